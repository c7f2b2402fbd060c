"""A run that survives restarts (issue 24), through the real CLI: a live MJPEG camera on loopback
killed with ``kill -9`` and started again, a video file continued after its last frame, folders of
another run or of a running process refused, and webhook queues a run leaves delivered by the next."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CONFIGS, SAMPLES, run_vpipe, wait_until
from tests.servers.mjpeg import MjpegServer
from tests.test_faults import one_line_error
from tests.test_faults_live import Vpipe
from tests.test_publish import Receiver, free_port

FAST = ("--imgsz", "320")
"""Every run here: a small model input (2 CPUs)."""


def config_with_webhook(tmp_path: Path, port: int) -> Path:
    """configs/traffic.yaml with 10 s interval bins (a short run closes some) and a webhook to ``port``."""
    settings = yaml.safe_load((CONFIGS / "traffic.yaml").read_text())
    settings.update(output={"interval": "10s"}, publish={"webhook": {"url": f"http://127.0.0.1:{port}/hook"}})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def records(out: Path) -> list[dict[str, Any]]:
    """Every record of the folder's ``events.jsonl`` files, segment after segment."""
    files = sorted(out.glob("events*.jsonl"), key=lambda path: (path.name != "events.jsonl", path.name))
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def crossings(out: Path) -> list[dict[str, Any]]:
    return [record for record in records(out) if record["event"] == "line_crossing"]


@pytest.fixture
def camera(highway: Path) -> Iterator[str]:
    """The URL of an MJPEG camera on loopback serving the highway clip in a loop."""
    server = MjpegServer(highway).start()
    yield server.url
    server.stop()


def test_a_killed_camera_run_continues_where_it_stopped(tmp_path: Path, camera: str):
    """Run, ``kill -9`` mid-stream with the webhook's endpoint down, the same command again with it up,
    SIGTERM: the folder holds both runs' records once each, numbered on, and the endpoint gets them all."""
    port = free_port()  # nobody listens during the first run: its records wait in the queue file
    out = tmp_path / "out"
    command = (camera, "--config", config_with_webhook(tmp_path, port), "--output", out, *FAST)

    first = Vpipe(*command)
    try:
        wait_until(lambda: len(crossings(out)) >= 3 or first.process.poll() is not None, timeout=180)
        assert first.process.poll() is None, first.stderr
    finally:
        first.kill()  # SIGKILL: nothing is finished, flushed or closed by the process
    killed = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file() and path.name != ".vpipe.lock"}
    first_records = records(out)
    first_rows = list(csv.DictReader((out / "counts.csv").open()))
    assert first_records and first_rows

    receiver = Receiver(port)
    second = Vpipe(*command)
    try:
        wait_until(
            lambda: len(crossings(out)) >= len(first_records) + 3 or second.process.poll() is not None, timeout=180
        )
        # A second process on the folder while the run writes it (--max-frames: it ends if it is let in).
        meanwhile = run_vpipe("run", *command, "--max-frames", "5", timeout=120)
        second.stop(signal.SIGTERM, timeout=120)
    finally:
        second.kill()
        receiver.shutdown()
    assert second.process.returncode == 0, second.stderr
    one_line_error(meanwhile, f"{out} is being written by another vpipe process (pid {second.process.pid})", code=4)

    for name, content in killed.items():  # the killed run's files are kept, not rewritten
        # summary.json and intervals.csv go on; the store (vpipe.sqlite and its WAL files) is written by both runs
        if name not in ("summary.json", "intervals.csv") and not name.startswith("vpipe.sqlite"):
            assert (out / name).read_bytes() == content, name
    assert (out / "intervals.csv").read_bytes().startswith(killed["intervals.csv"]), "rows are only added"
    assert (out / "events.0001.jsonl").exists() and (out / "counts.0001.csv").exists()
    assert (out / "annotated.mp4").exists() and (out / "annotated.0001.mp4").exists()

    everything = records(out)
    assert everything[: len(first_records)] == first_records
    first_id = first_records[0]["run_id"]
    second_id = everything[-1]["run_id"]
    assert first_id != second_id
    assert {r["run_id"] for r in first_records} == {first_id}
    assert {r["run_id"] for r in everything[len(first_records) :]} == {second_id}
    assert [r["seq"] for r in everything] == list(range(1, len(everything) + 1)), "seq goes on after a restart"
    times = [datetime.fromisoformat(r["time_utc"].replace("Z", "+00:00")) for r in everything]
    assert times == sorted(times) and all(r["time_utc"].endswith("Z") for r in everything)

    second_rows = list(csv.DictReader((out / "counts.0001.csv").open()))
    assert int(second_rows[0]["frame_index"]) > int(first_rows[-1]["frame_index"]), "frame numbers go on"
    assert float(second_rows[0]["timestamp_s"]) > float(first_rows[-1]["timestamp_s"]), "the run's time goes on"
    assert int(second_rows[0]["main_in"]) >= int(first_rows[-1]["main_in"]), "counts go on from the killed run's"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["run_id"] == second_id
    assert [(s["run_id"], s["status"]) for s in summary["segments"]] == [
        (first_id, "killed"),
        (second_id, "interrupted"),
    ]
    by_class = Counter((r["direction"], r["class_name"]) for r in crossings(out))
    line = summary["lines"]["main"]
    assert line["in_total"] + line["out_total"] == sum(by_class.values()), "the totals cover both runs"
    assert {(d, c): n for d in ("in", "out") for c, n in line[d].items()} == dict(by_class)

    rows = list(csv.DictReader((out / "intervals.csv").open()))
    for run_id in (first_id, second_id):  # each run's bins (the killed run's open one too) hold its crossings
        binned: Counter[str] = Counter()
        for row in rows:
            if row["run_id"] == run_id and row["class_name"] == "all":
                binned[row["direction"]] += int(row["count"])
        assert binned == Counter(r["direction"] for r in crossings(out) if r["run_id"] == run_id), run_id
        assert any(row["run_id"] == run_id for row in rows)
    with sqlite3.connect(out / "vpipe.sqlite") as db:  # every bin stored, the killed run's rebuilt ones too
        stored = Counter(db.execute("SELECT run_id, kind, name, direction, class_name, count FROM intervals"))
    columns = ("run_id", "kind", "name", "direction", "class_name")
    assert stored == Counter((*(row[c] for c in columns), int(row["count"])) for row in rows)

    events = [r for r in receiver.received if r["event"] != "counts"]
    assert [{k: v for k, v in r.items() if k != "camera"} for r in events] == everything, "each record once, in order"
    assert len({(r["run_id"], r["seq"]) for r in events}) == len(events)
    assert {r["run_id"] for r in receiver.received if r["event"] == "counts"} == {first_id, second_id}
    assert (out / "publish" / "webhook.queue").read_bytes() == b""


def test_a_video_goes_on_after_its_last_frame_and_another_config_is_refused(tmp_path: Path, highway: Path):
    """The same command on a video file continues after the frames written (``--max-frames`` counts the
    video's frames from its start); a run with another line into the folder is refused and changes nothing."""
    out = tmp_path / "out"
    command = ("run", highway, "--config", CONFIGS / "traffic.yaml", "--output", out, "--no-video", *FAST)
    first = run_vpipe(*command, "--max-frames", "100", "--quiet")
    assert first.returncode == 0, first.stderr
    second = run_vpipe(*command, "--max-frames", "200", "--quiet")
    assert second.returncode == 0, second.stderr
    assert (first.stdout, first.stderr, second.stdout, second.stderr) == ("", "", "", "")

    read = [list(csv.DictReader((out / name).open())) for name in ("counts.csv", "counts.0001.csv")]
    assert [int(row["frame_index"]) for rows in read for row in rows] == list(range(200)), "each frame once"
    assert float(read[1][0]["timestamp_s"]) > float(read[0][-1]["timestamp_s"]), "the video's own times"
    everything = records(out)
    assert [r["seq"] for r in everything] == list(range(1, len(everything) + 1))
    summary = json.loads((out / "summary.json").read_text())
    assert [s["status"] for s in summary["segments"]] == ["completed", "completed"]
    assert summary["lines"]["main"]["in_total"] == sum(r["direction"] == "in" for r in crossings(out)) > 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    refused = run_vpipe(*command, "--line", "other:100,300,800,300", "--max-frames", "10")
    one_line_error(refused, f"{out} holds another run's outputs (counts.0001.csv, counts.csv", code=4)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before, "the folder is untouched"


def test_overwrite_keeps_an_undelivered_webhook_queue_and_delivers_it(tmp_path: Path, camera: str, highway: Path):
    """``--overwrite`` replaces a killed run's outputs but not the records its webhook never delivered."""
    port = free_port()  # down during the first run
    out = tmp_path / "out"
    config = config_with_webhook(tmp_path, port)
    first = Vpipe(camera, "--config", config, "--output", out, *FAST)
    try:
        wait_until(lambda: len(crossings(out)) >= 2 or first.process.poll() is not None, timeout=180)
        assert first.process.poll() is None, first.stderr
    finally:
        first.kill()
    queue = out / "publish" / "webhook.queue"
    undelivered = [json.loads(line) for line in queue.read_text().splitlines()]
    sent = [{k: v for k, v in r.items() if k != "camera"} for r in undelivered if r["event"] != "counts"]
    assert sent == records(out)[: len(sent)] and sent

    receiver = Receiver(port)
    try:
        again = run_vpipe(
            "run", highway, "--config", config, "--output", out, "--overwrite", "--max-frames", "5", *FAST
        )
    finally:
        receiver.shutdown()
    assert again.returncode == 0, again.stderr
    assert receiver.received[: len(undelivered)] == undelivered, "the earlier run's records first, each once"
    assert all(r["run_id"] != undelivered[0]["run_id"] for r in receiver.received[len(undelivered) :])
    assert queue.read_bytes() == b""


def test_a_killed_runs_open_parking_intervals_are_written_at_restart(tmp_path: Path):
    """The 12 lot snapshots: a run of the first 6 that ended (its end writes each bay still occupied as an
    ``ongoing`` interval) made into what ``kill -9`` leaves (those intervals and its end gone, ``running``);
    the same command for all 12 writes those intervals first, as the run's end would have."""
    out = tmp_path / "out"
    command = ("run", SAMPLES / "pklot_pucpr", "--config", CONFIGS / "parking.yaml", "--output", out, "--quiet")
    first = run_vpipe(*command, "--no-video", "--max-frames", "6")
    assert first.returncode == 0, first.stderr
    log = (out / "parking.jsonl").read_text().splitlines()
    left_open = [json.loads(line) for line in log if json.loads(line)["ongoing"]]
    assert len(left_open) > 10  # bays still occupied at its end
    (out / "parking.jsonl").write_text("".join(f"{line}\n" for line in log if not json.loads(line)["ongoing"]))
    summary = json.loads((out / "summary.json").read_text())
    summary["status"] = summary["segments"][-1]["status"] = "running"
    (out / "summary.json").write_text(json.dumps(summary))

    second = run_vpipe(*command, "--no-video", "--max-frames", "12")
    assert second.returncode == 0, second.stderr
    written = [json.loads(line) for line in (out / "parking.0001.jsonl").read_text().splitlines()]
    assert written[: len(left_open)] == left_open
    summary = json.loads((out / "summary.json").read_text())
    assert [segment["status"] for segment in summary["segments"]] == ["killed", "completed"]
