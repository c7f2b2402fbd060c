"""Column names of counts.csv and the TMC table: two items of a config that would write one column are
refused at load, naming both; and which columns are levels (zones, parking) is the run's to say, not
the names' (a crosswalk named ``x_count`` is a cumulative count)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analytics import Analytics
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.io.live.metrics import RunMetrics
from pipeline.io.outputs.plots import counts_figure
from pipeline.io.publish.publisher import Publisher
from tests.conftest import SAMPLES, run_vpipe

BASE = """\
model: {{classes: [car, person]}}
zones: [{zones}]
lines: [{lines}]
movements:
  approaches:
    - {{name: {a}, polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]}}
    - {{name: B, polygon: [[300, 0], [400, 0], [400, 100], [300, 100]]}}
  crosswalks: [{crosswalks}]
"""
LINE_N = "{name: N, line: [[150, 0], [150, 100]]}"


def _config(tmp_path: Path, *, zones: str = "", lines: str = "", a: str = "A", crosswalks: str = "") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(BASE.format(zones=zones, lines=lines, a=a, crosswalks=crosswalks))
    return path


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (  # a crosswalk line N's "in" column, and a crosswalk polygon N_in's
            {"crosswalks": LINE_N + ", {name: N_in, polygon: [[150, 0], [200, 0], [200, 50], [150, 50]]}"},
            "movements.crosswalks[1].name: 'N_in' gives the counts.csv column 'ped_N_in', "
            "as movements.crosswalks[0].name (N) does; rename one of them",
        ),
        (  # a line named like a crosswalk's column
            {"lines": "{name: ped_N, start: [0, 200], end: [400, 200]}", "crosswalks": LINE_N},
            "movements.crosswalks[0].name: 'N' gives the counts.csv column 'ped_N_in', as lines[0].name (ped_N)",
        ),
        (  # zone "B->B" counts objects in column "B->B_count", the movement from B to approach "B_count"
            {"zones": "{name: B->B, polygon: [[0, 200], [50, 200], [50, 250]]}", "a": "B_count"},
            "movements.approaches[1].name: 'B' gives the counts.csv column 'B->B_count', as zones[0].name (B->B)",
        ),
        (  # the TMC table: approach "ped", turn "left", group "cars"; crosswalk "left_cars"
            {"a": "ped", "crosswalks": "{name: left_cars, line: [[150, 0], [150, 100]]}"},
            "movements.crosswalks[0].name: 'left_cars' gives the TMC column 'ped_left_cars', "
            "as movements.approaches[0].name (ped) does",
        ),
    ],
)
def test_two_items_writing_one_column_are_refused_naming_both(tmp_path: Path, sections: dict, message: str):
    path = _config(tmp_path, **sections)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)


def test_names_that_only_look_alike_load(tmp_path: Path):
    path = _config(
        tmp_path,
        zones="{name: x, polygon: [[0, 200], [50, 200], [50, 250]]}",
        lines="{name: x_count, start: [0, 300], end: [400, 300]}",
        crosswalks=LINE_N + ", {name: N_i, polygon: [[150, 0], [200, 0], [200, 50], [150, 50]]}",
    )
    config = load_config(path)
    assert [walk.name for walk in config.movements.crosswalks] == ["N", "N_i"]


def test_a_clash_is_one_line_and_exit_code_2_before_the_model_loads(tmp_path: Path):
    path = _config(tmp_path, crosswalks=LINE_N + ", {name: N_out, polygon: [[150, 0], [200, 0], [200, 50]]}")
    result = run_vpipe("run", SAMPLES / "highway.mp4", "--config", path, "--output", tmp_path / "out", "--no-video")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vpipe: error: {path}: movements.crosswalks[1].name: 'N_out' gives the counts.csv column 'ped_N_out', "
        "as movements.crosswalks[0].name (N) does; rename one of them"
    ]


def test_a_crosswalk_named_like_a_zone_column_is_plotted_and_gauged_as_the_count_it_is(tmp_path: Path):
    """Crosswalk polygon ``x_count`` (column ``ped_x_count``) beside zone ``yard`` (``yard_count``)."""
    path = _config(
        tmp_path,
        zones="{name: yard, polygon: [[0, 200], [50, 200], [50, 250]]}",
        crosswalks="{name: x_count, polygon: [[150, 0], [200, 0], [200, 50], [150, 50]]}",
    )
    config = load_config(path)
    analytics = Analytics.for_run(config)
    assert analytics.level_columns == ["yard_count"]
    values = {"A->B": 2, "ped_x_count": 3, "yard_count": 1}
    rows = [
        {"frame_index": str(i), "timestamp_s": str(i / 10), "tracks_active": "1"}
        | {column: str(values.get(column, 0) * (i >= 5)) for column in analytics.columns}
        for i in range(10)
    ]
    figure = counts_figure(rows, analytics.level_columns)
    assert figure is not None and len(figure.axes) == 2
    cumulative, levels = ([line.get_label() for line in axes.get_lines()] for axes in figure.axes)
    assert cumulative == ["A->B", "ped_x_count"] and levels == ["yard_count"]

    metrics = RunMetrics()
    Publisher(config, "cam", tmp_path, metrics).counts({key: float(value) for key, value in rows[-1].items()}, 1.0)
    gauges = [line for line in metrics.text().decode().splitlines() if line.startswith("vpipe_zone_objects{")]
    assert gauges == ['vpipe_zone_objects{camera="cam",zone="yard"} 1.0']
