"""Faults of a run's summary (issue 25, item 10), through the real CLI: a disk filled by another
process mid-run, an output that cannot be created at the start.

The full disk is a real one: a small tmpfs mounted (as root) as the output folder's disk and filled
by the test while vpipe runs."""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.conftest import run_vpipe, wait_until
from tests.test_batch import FAST
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
