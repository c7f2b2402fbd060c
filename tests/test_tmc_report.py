"""``vpipe report --tmc`` through the real CLI on a real run of the street clip (two approaches,
West and East): the TMC table's counts equal the run's movement events counted here event by event,
per 15-minute bin, approach, turn and class group; the workbook reads back with openpyxl with the
documented sheets and columns; the diagram is a PNG of the documented size; the same from a
``vpipe batch --split`` output folder (its slices' events); bad input is one line and exit code 2.

The expected turn and class group of each event are written here from the layout and the default
groups, not read from the event: on this straight road West->East and East->West go straight on and
A->A turns round.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import pytest
from openpyxl import load_workbook

from pipeline.store.tmc_files import DIAGRAM_PX
from tests.conftest import CONFIGS, run_vpipe
from tests.test_store import STREET_START, epoch_s, happened, iso, write_config

TURN = {
    ("West", "East"): "through",
    ("East", "West"): "through",
    ("West", "West"): "u_turn",
    ("East", "East"): "u_turn",
}
GROUP = {"car": "cars", "truck": "trucks", "bus": "buses", "motorcycle": "motorcycles"}
GROUPS = ["cars", "trucks", "buses", "motorcycles", "bicycles"]
TURNS = ["left", "through", "right", "u_turn"]


def expected_tmc(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(15-minute bin start, column) -> count, from the movement events alone."""
    counts: Counter[tuple[str, str]] = Counter()
    for event in events:
        if event["event"] != "movement":
            continue
        moment = epoch_s(STREET_START) + happened(event)
        start = iso(math.floor(moment / 900) * 900)
        if event["destination"] is None:
            counts[start, f"{event['origin']}_unassigned"] += 1
            continue
        turn = TURN[event["origin"], event["destination"]]
        counts[start, f"{event['origin']}_{turn}_{GROUP[event['class_name']]}"] += 1
        counts[start, "total_vehicles"] += 1
    return counts


def table_counts(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    skip = {"camera", "interval_start", "interval_end", "watched_s", "partial"}
    return Counter(
        {(row["interval_start"], k): int(v) for row in rows for k, v in row.items() if k not in skip and int(v)}
    )


@pytest.fixture(scope="module")
def street_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tmc_config")
    return write_config(folder / "config.yaml", CONFIGS / "street_movements.yaml", source={"start_time": STREET_START})


@pytest.fixture(scope="module")
def street_run(tmp_path_factory: pytest.TempPathFactory, street: Path, street_config: Path) -> Path:
    out = tmp_path_factory.mktemp("tmc_run")
    result = run_vpipe("run", street, "--config", street_config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def read_events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.rglob("events.jsonl")) for line in path.read_text().splitlines()]


def test_the_tmc_of_a_run_equals_its_movement_events(street_run: Path, street_config: Path, tmp_path: Path):
    events = read_events(street_run)
    expected = expected_tmc(events)
    assert sum(1 for e in events if e["event"] == "movement") >= 20  # the clip has movements to count
    output = tmp_path / "tmc.csv"
    result = run_vpipe("report", street_run, "--tmc", "--config", street_config, "--output", output)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    rows = list(csv.DictReader(output.open()))
    assert table_counts(rows) == expected
    columns = [f"{a}_{t}_{g}" for a in ("West", "East") for t in TURNS for g in GROUPS]
    columns += ["West_unassigned", "East_unassigned", "total_vehicles"]
    assert list(rows[0]) == ["camera", "interval_start", "interval_end", "watched_s", "partial", *columns]
    # The clip straddles 08:00: two bins, each watched in part (10 s from 07:59:50, then the rest of the clip),
    # and the peak hour (shorter than an hour) spans both, no factor.
    assert [row["interval_start"] for row in rows] == ["2024-05-07T07:45:00Z", "2024-05-07T08:00:00Z"]
    duration_s = json.loads((street_run / "summary.json").read_text())["duration_s"]
    assert [row["partial"] for row in rows] == ["True", "True"] and float(rows[0]["watched_s"]) == 10.0
    assert float(rows[1]["watched_s"]) == pytest.approx(duration_s - 10.0, abs=0.1)  # to its last frame
    peak = list(csv.DictReader((tmp_path / "tmc_peak_hour.csv").open()))
    assert [row["approach"] for row in peak] == ["West", "East", "all"]
    vehicles = {a: sum(n for (_, c), n in expected.items() if c.startswith(f"{a}_through")) for a in ("West", "East")}
    heavy = Counter(e["origin"] for e in events if e["event"] == "movement" and e["class_name"] in ("truck", "bus"))
    for row in peak[:2]:
        approach = row["approach"]
        assert int(row["through"]) == int(row["total"]) == vehicles[approach]
        assert float(row["heavy_vehicle_pct"]) == round(100 * heavy[approach] / vehicles[approach], 1)
        assert row["phf"] == ""  # less than an hour of video
    assert int(peak[2]["total"]) == sum(vehicles.values())
    image = cv2.imread(str(tmp_path / "tmc.png"))
    assert image is not None and image.shape[:2] == (DIAGRAM_PX, DIAGRAM_PX)


def test_the_tmc_workbook_has_the_documented_sheets_and_columns(street_run: Path, street_config: Path, tmp_path: Path):
    output = tmp_path / "tmc.xlsx"
    result = run_vpipe("report", street_run, "--tmc", "--config", street_config, "--output", output)
    assert result.returncode == 0, result.stderr
    workbook = load_workbook(output)
    assert workbook.sheetnames == ["tmc", "peak_hour"]
    sheet = [[cell.value for cell in row] for row in workbook["tmc"].iter_rows()]
    rows = [dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]]
    assert table_counts(rows) == expected_tmc(read_events(street_run))
    peak_header = [cell.value for cell in next(workbook["peak_hour"].iter_rows())]
    head = ["camera", "peak_hour_start", "peak_hour_end", "approach"]
    assert peak_header == [*head, *TURNS, "total", "phf", "heavy_vehicle_pct", "bicycles"]
    assert (tmp_path / "tmc.png").is_file()


def test_the_tmc_of_a_batch_folder_equals_its_slices_movement_events(
    tmp_path_factory: pytest.TempPathFactory, street: Path, street_config: Path
):
    out = tmp_path_factory.mktemp("tmc_batch")
    inputs = out / "in"
    inputs.mkdir()
    (inputs / "street.mp4").symlink_to(street)
    batch = out / "crossing"
    result = run_vpipe(
        "batch", str(inputs / "*.mp4"), "-c", street_config, "-o", batch, "--no-video", "--quiet", "--split", "10s"
    )
    assert result.returncode == 0, result.stderr
    events = read_events(batch)
    assert len(list(batch.rglob("part-*/events.jsonl"))) >= 2
    output = out / "tmc.csv"
    result = run_vpipe("report", batch, "--tmc", "--config", street_config, "--output", output)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(output.open()))
    assert {row["camera"] for row in rows} == {"crossing"}
    assert table_counts(rows) == expected_tmc(events)
    assert not (batch / "vpipe.sqlite").exists()  # the batch folder is read, not written


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "--tmc needs --output FILE.csv or FILE.xlsx"),
        (["--output", "{tmp}/x.json"], "--tmc needs --output FILE.csv or FILE.xlsx"),
        (["--output", "{tmp}/x.csv", "--parking"], "--tmc needs --output FILE.csv or FILE.xlsx"),
        (["--output", "{tmp}/x.csv", "--config", "{tmp}/missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_tmc_arguments_are_one_line_and_exit_code_2(street_run: Path, tmp_path: Path, flags: list, message: str):
    result = run_vpipe("report", street_run, "--tmc", *(flag.format(tmp=tmp_path) for flag in flags))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
