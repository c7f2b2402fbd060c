"""Faults of a run's summary and a batch's outcomes (issue 25, items 8 and 10), through the real CLI:
a disk filled by another process mid-run, and a truncated video in ``vpipe batch``.

The full disk is a real one: a small tmpfs mounted (as root) as the output folder's disk and filled
by the test while vpipe runs."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import run_vpipe, wait_until
from tests.test_batch import FAST, manifest_records, read_json, run_batch
from tests.test_faults import one_line_error
from tests.test_faults_live import Vpipe, summary_of

HIGHWAY_FRAMES = 335


@contextmanager
def small_disk(folder: Path, size: str = "20m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (above vpipe's 16 MiB free-space check at the start)."""
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(disk: Path) -> None:
    """Take every free byte of ``disk``, as another process writing there would."""
    with (disk / "filler").open("wb", buffering=0) as file:
        for chunk in (2**20, 4096, 1):  # then the last partial page
            with suppress(OSError):
                while True:
                    file.write(b"\0" * chunk)


def test_a_disk_filled_by_another_process_mid_run_leaves_a_failed_summary(tmp_path: Path, highway: Path):
    """The disk fills after the first frame: the next page a file needs is refused, and so is the
    temporary file the final summary.json would replace the running one with."""
    with small_disk(tmp_path / "disk") as disk:
        out = disk / "out"
        vpipe = Vpipe(highway, "--output", out, "--quiet", *FAST)  # with lines: events.jsonl grows early
        try:
            running = wait_until(lambda: (out / "summary.json").exists() and summary_of(out), timeout=300)
            assert running["status"] == "running", "summary.json is there from the start"
            counts = out / "counts.csv"
            wait_until(lambda: counts.exists() and len(counts.read_text().splitlines()) > 1, timeout=60)  # a frame in
            fill(disk)
            vpipe.process.wait(timeout=300)
            vpipe.stop()  # it has ended: this only waits for its stderr
        finally:
            vpipe.kill()
        process = vpipe.process
        stdout = process.stdout.read() if process.stdout else ""
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(vpipe.stderr))
        assert stdout == "", "--quiet: nothing on stdout"
        line = one_line_error(result, "No space left on device")
        summary = summary_of(out)  # parses: a whole JSON document
        assert summary["status"] == "failed"
        assert summary["error"] == line.removeprefix("vpipe: error: ")
        assert 0 < summary["frames"] < HIGHWAY_FRAMES, "stopped mid-run"
        with (out / "counts.csv").open(newline="") as file:
            rows = list(csv.reader(file))
        assert {len(row) for row in rows} == {len(rows[0])}, "counts.csv keeps whole rows"
        assert [int(row[0]) for row in rows[1:]] == list(range(len(rows) - 1))
        assert all(json.loads(record) for record in (out / "events.jsonl").read_text().splitlines())


def test_an_output_that_cannot_be_created_at_the_start_leaves_a_failed_summary(tmp_path: Path, highway: Path):
    """intervals.csv is opened after summary.json: a folder in its place fails it as a disk filled
    at that moment would."""
    out = tmp_path / "out"
    (out / "intervals.csv").mkdir(parents=True)
    result = run_vpipe("run", highway, "--output", out, "--quiet", *FAST)
    assert result.stdout == ""
    line = one_line_error(result, f"cannot write {out / 'intervals.csv'}: Is a directory")
    summary = summary_of(out)
    assert (summary["status"], summary["frames"]) == ("failed", 0)
    assert summary["error"] == line.removeprefix("vpipe: error: ")


@pytest.mark.parametrize("split", [[], ["--split", "2s"]], ids=["whole", "split"])
def test_batch_keeps_a_truncated_videos_counts_and_a_rerun_does_not_retry_it(
    tmp_path: Path, highway: Path, split: list[str]
):
    archive = tmp_path / "archive"
    archive.mkdir()
    cut = archive / "cut.mp4"
    cut.write_bytes(highway.read_bytes()[: highway.stat().st_size // 4])  # an upload cut short
    single = run_vpipe("run", cut, "--output", tmp_path / "run", "--quiet", *FAST)
    assert single.returncode == 3, single.stderr
    expected = summary_of(tmp_path / "run")
    assert expected["status"] == "truncated" and 0 < expected["frames"] < HIGHWAY_FRAMES
    main = expected["lines"]["main"]

    out = tmp_path / "out"
    for run in ("first", "rerun"):
        result = run_batch(archive, "--output", out, "--quiet", *split, *FAST)  # Ray started by the driver
        assert (result.returncode, result.stdout, result.stderr) == (3, "", ""), run
        rows = list(csv.DictReader((out / "batch_summary.csv").open(newline="")))
        assert [(row["video"], row["status"], row["error"]) for row in rows] == [("cut.mp4", "truncated", "")]
        assert int(rows[0]["frames"]) == expected["frames"]
        assert (int(rows[0]["main_in"]), int(rows[0]["main_out"])) == (main["in_total"], main["out_total"])
        totals = read_json(out / "batch_summary.json")
        assert (totals["truncated"], totals["completed"], totals["failed"]) == (1, 0, 0)
        assert totals["frames"] == expected["frames"]
        assert (totals["lines"]["main"]["in"], totals["lines"]["main"]["out"]) == (main["in"], main["out"])
        video = read_json(out / "cut" / "summary.json")
        assert (video["status"], video["frames"]) == ("truncated", expected["frames"])
    items = [record for record in manifest_records(out) if record["type"] == "item"]
    assert len(items) == len({record["id"] for record in items}), "the rerun processed nothing again"
    assert [record["attempts"] for record in items] == [1] * len(items), "a truncated video is not retried"
    # Slices finish in any order: the video's last one (the whole video unsplit) holds the cut.
    statuses = [record["status"] for record in sorted(items, key=lambda record: record["id"])]
    assert statuses == ["completed"] * (len(items) - 1) + ["truncated"]


def test_overwrite_leaves_no_intervals_of_the_run_before(tmp_path: Path, highway: Path):
    """A run with a line writes intervals.csv; one without lines writes none, so ``--overwrite`` must
    remove the earlier run's: a stale file beside new outputs would be read as this run's counts."""
    out = tmp_path / "out"
    first = run_vpipe("run", highway, "--output", out, "--max-frames", "5", "--quiet", *FAST)
    assert first.returncode == 0, first.stderr
    assert (out / "intervals.csv").exists()
    refused = run_vpipe("run", highway, "--output", out, "--max-frames", "5", "--quiet", "--no-video")
    one_line_error(refused, "holds another run's outputs", code=4)
    second = run_vpipe("run", highway, "--output", out, "--max-frames", "5", "--quiet", "--no-video", "--overwrite")
    assert second.returncode == 0, second.stderr
    assert not (out / "intervals.csv").exists()
    assert summary_of(out)["frames"] == 5
