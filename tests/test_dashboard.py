"""The ``--serve`` page's dashboard (issue 24): charts of a camera's counts and parking from the run's
store, drawn as SVG on the server, and the read-only JSON API ``/api/counts`` and ``/api/parking``.

Exact synthetic stores (written through the store's own writer, as a run writes) for the numbers,
bad parameters and the Host guard; then the real CLI on a live MJPEG camera on loopback, the page
in headless Chromium: the chart's bars against the crossings ``events.jsonl`` and the store hold.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.io.live.view import LiveView
from pipeline.store.writes import Batch, RunInfo, StoreWriter
from tests.conftest import CONFIGS, wait_until
from tests.servers.mjpeg import MjpegServer
from tests.test_faults_live import Vpipe
from tests.test_live_view import shown_tables

START_MS = 1_715_061_600_000  # 2024-05-07T06:00:00Z
SPAN = "from=2024-05-07T06:00Z&to=2024-05-07T06:03Z&interval=1m"


def crossing(seq: int, at_s: float, direction: str, class_name: str = "car") -> tuple[int, dict[str, Any]]:
    record = {"event": "line_crossing", "timestamp_s": at_s, "frame_index": seq, "line": "main"}
    return seq, record | {"direction": direction, "class_name": class_name, "track_id": seq}


def slot(seq: int, at_s: float, name: str, occupied: bool) -> tuple[int, dict[str, Any]]:
    return seq, {"event": "slot_occupied" if occupied else "slot_free", "timestamp_s": at_s, "slot": name}


@pytest.fixture
def store(tmp_path: Path) -> str:
    """Camera ``gate`` from 06:00:00 to 06:02:50: crossings in at 06:00:10, 06:00:20 (a truck), 06:01:10;
    out at 06:01:05. Camera ``lot`` (4 bays) over the same time: A taken at 06:00:30, B at 06:00:40, A
    left at 06:01:30, C taken at 06:02:05."""
    target = str(tmp_path / "store.sqlite")
    writer = StoreWriter(target)
    gate = RunInfo("gate", "run-gate", "rtsp://gate", str(tmp_path / "gate"), START_MS)
    lot = RunInfo("lot", "run-lot", "rtsp://lot", str(tmp_path / "lot"), START_MS, slots=4)
    last_ms = START_MS + 170_000
    for run in (gate, lot):
        writer.begin(run, START_MS)
    events = [crossing(1, 10, "in"), crossing(2, 20, "in", "truck"), crossing(3, 65, "out"), crossing(4, 70, "in")]
    writer.write(gate, Batch(START_MS, last_ms, events=events))
    changes = [slot(1, 30, "A", True), slot(2, 40, "B", True), slot(3, 90, "A", False), slot(4, 125, "C", True)]
    writer.write(lot, Batch(START_MS, last_ms, events=changes))
    writer.close()
    return target


@pytest.fixture
def view(store: str) -> Iterator[LiveView]:
    with LiveView(port=0) as live:
        live.dashboard.add("gate-source", "gate", store)
        live.dashboard.add("lot-source", "lot", store)
        live.publish("gate-source", np.zeros((36, 64, 3), np.uint8), 1, 0.0, {})
        yield live


def get(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET (an error status too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def totals(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(bin start's HH:MM, direction) -> the ``all`` count."""
    return {
        (row["interval_start"][11:16], row["direction"]): row["count"] for row in rows if row["class_name"] == "all"
    }


def test_api_counts_are_the_stored_crossings_per_interval(view: LiveView):
    status, kind, body = get(f"{view.url}api/counts?camera=gate&{SPAN}")
    assert (status, kind) == (200, "application/json")
    rows = json.loads(body)
    assert totals(rows) == {
        ("06:00", "in"): 2,
        ("06:00", "out"): 0,
        ("06:01", "in"): 1,
        ("06:01", "out"): 1,
        ("06:02", "in"): 0,
        ("06:02", "out"): 0,
    }
    trucks = [row for row in rows if row["class_name"] == "truck"]
    assert [(row["interval_start"], row["count"]) for row in trucks] == [("2024-05-07T06:00:00Z", 1)]
    assert {row["camera"] for row in rows} == {"gate"}


def test_api_parking_gives_occupied_and_free_bays_per_interval(view: LiveView):
    status, _, body = get(f"{view.url}api/parking?camera=lot&{SPAN}")
    assert status == 200
    rows = [
        (r["interval_start"][11:16], r["slots"], r["occupied"], r["free"], r["max_occupied"]) for r in json.loads(body)
    ]
    assert rows == [("06:00", 4, 2, 2, 2), ("06:01", 4, 1, 3, 2), ("06:02", 4, 2, 2, 2)]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("api/counts?interval=fortnight", "interval"),
        ("api/counts?interval=0.5s", "interval"),
        ("api/counts?from=yesterday", "from"),
        ("api/counts?from=2024-05-08&to=2024-05-07", "from must be before to"),
        ("api/counts?from=2024-05-07&from=2024-05-08", "from given 2 times"),
        ("api/counts?cameras=gate", "unknown parameter 'cameras'"),
        ("api/parking?from=2000-01-01&to=2024-01-01&interval=1m", "more than 10000 bins"),
        ("api/counts?from=2024-05-01&interval=1s", "more than 10000 bins"),  # to: the store's end, 6 days on
        ("chart.svg?source=gate-source&hours=-1", "hours"),
        ("chart.svg?source=gate-source&hours=24&interval=1m", "more than 200 bins"),
    ],
)
def test_bad_parameters_are_a_400_with_one_line_of_json(view: LiveView, path: str, says: str):
    status, kind, body = get(view.url + path)
    assert (status, kind) == (400, "application/json"), body
    error = json.loads(body)["error"]
    assert says in error and "\n" not in error


def test_the_chart_is_svg_with_a_bar_per_bin_and_series_holding_its_count(view: LiveView):
    status, kind, body = get(f"{view.url}chart.svg?source=gate-source&hours=1&interval=1m")
    assert (status, kind) == (200, "image/svg+xml; charset=utf-8")
    svg = body.decode()
    assert svg.startswith("<svg") and "<script" not in svg
    bars = re.findall(r'data-series="([^"]+)" data-start="[^"]+T([0-9:]+)Z" data-count="(\d+)"', svg)
    shown = {(series, start[:5]): int(count) for series, start, count in bars}
    assert shown == {
        ("main in", "06:00"): 2,
        ("main out", "06:00"): 0,
        ("main in", "06:01"): 1,
        ("main out", "06:01"): 1,
        ("main in", "06:02"): 0,
        ("main out", "06:02"): 0,
    }
    _, _, lot = get(f"{view.url}chart.svg?source=lot-source&hours=1&interval=1m")
    bays = re.findall(r'data-series="(occupied|free)" data-start="[^"]+T([0-9:]+)Z" data-count="(\d+)"', lot.decode())
    assert [(series, start[:5], int(count)) for series, start, count in bays] == [
        ("occupied", "06:00", 2),
        ("free", "06:00", 2),
        ("occupied", "06:01", 1),
        ("free", "06:01", 3),
        ("occupied", "06:02", 2),
        ("free", "06:02", 2),
    ]


def test_names_in_the_chart_are_text_never_markup(tmp_path: Path):
    target = str(tmp_path / "store.sqlite")
    writer = StoreWriter(target)
    run = RunInfo("cam", "run", "file", str(tmp_path), START_MS)
    writer.begin(run, START_MS)
    record = {"event": "line_crossing", "timestamp_s": 1.0, "line": '<img src=x onerror="alert(1)">', "direction": "in"}
    writer.write(run, Batch(START_MS, START_MS + 2000, events=[(1, record | {"class_name": "car"})]))
    writer.close()
    with LiveView(port=0) as live:
        live.dashboard.add("cam", "cam", target)
        status, _, body = get(f"{live.url}chart.svg?source=cam&hours=1")
    assert status == 200
    assert b"<img" not in body and b"&lt;img src=x onerror=" in body


def test_without_a_store_the_api_and_charts_say_so(store: str):
    with LiveView(port=0) as live:
        live.dashboard.add("cam", "cam", None)
        for path in ("api/counts", "chart.svg?source=cam"):
            status, _, body = get(live.url + path)
            assert status == 404 and "--store none" in json.loads(body)["error"]
        status, _, body = get(f"{live.url}chart.svg?source=elsewhere")
        assert status == 404 and "elsewhere" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "path", ["/api/counts", "/api/parking", "/chart.svg?source=gate-source", "/snapshot.jpg?source=gate-source"]
)
def test_the_host_guard_covers_the_dashboard(view: LiveView, path: str):
    connection = http.client.HTTPConnection("127.0.0.1", view.port, timeout=10)
    connection.request("GET", path, headers={"Host": "rebind.example:80"})
    response = connection.getresponse()
    assert response.status == 403
    connection.close()
    assert get(f"{view.url}{path.lstrip('/')}")[0] == 200  # the same request from this machine


def test_the_dashboard_writes_nothing(view: LiveView, store: str):
    before = Path(store).read_bytes()
    for path in ("api/counts", "api/parking", "chart.svg?source=gate-source"):
        assert get(view.url + path)[0] == 200
        request = urllib.request.Request(view.url + path, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 501
    assert Path(store).read_bytes() == before


# -- the real thing: vpipe run --serve on a live camera, the page in Chromium -----------------------


def bar_counts(browser: Any) -> dict[tuple[str, str], int]:
    """What the page's counts chart shows: (series, bin start) -> count, read from its bars."""
    return browser.execute_script(
        "const out = {};"
        "for (const bar of document.querySelectorAll('#cameras .chart g.counts rect.bar'))"
        "  out[bar.dataset.series + '|' + bar.dataset.start] = Number(bar.dataset.count);"
        "return out;"
    )


def test_the_page_charts_the_crossings_of_a_live_camera(tmp_path: Path, highway: Path, browser: Any):
    """vpipe run --serve on a live MJPEG camera: the page's tile shows the camera's frame, and once the
    camera is gone (the counts hold still) its chart's bars are the crossings of events.jsonl, each in
    the 10 s bin of its stored time."""
    camera = MjpegServer(highway).start()
    out = tmp_path / "out"
    run = Vpipe(camera.url, "--config", CONFIGS / "traffic.yaml", "--output", out, "--imgsz", "320", "--serve", "0")
    try:
        run.wait_for_stderr("live view: http://127.0.0.1:", timeout=180)
        url = next(re.search(r"http://127\.0\.0\.1:\d+/", line)[0] for line in run.stderr if "live view:" in line)

        def crossings() -> list[dict[str, Any]]:
            lines = (out / "events.jsonl").read_text().splitlines() if (out / "events.jsonl").exists() else []
            return [record for line in lines if (record := json.loads(line))["event"] == "line_crossing"]

        wait_until(lambda: len(crossings()) >= 3 or run.process.poll() is not None, timeout=240)
        assert run.process.poll() is None, run.stderr
        browser.get(url + "?hours=0.5&interval=10s")
        snapshot = wait_until(lambda: browser.execute_script("return document.querySelector('#cameras img.snapshot')"))
        wait_until(lambda: browser.execute_script("return arguments[0].naturalWidth", snapshot) == 960, timeout=20)
        stream = browser.find_element("id", "stream")
        wait_until(lambda: browser.execute_script("return arguments[0].naturalWidth", stream) == 960, timeout=20)
        # the run tells the page what its columns count: line main's in and out in the table of lines
        assert wait_until(lambda: shown_tables(browser) or None, timeout=10)[0] == ["line", ["in", "out"], ["main"]]
        camera.stop()  # no more frames: the counts hold still while vpipe waits to reconnect
        wait_until(lambda: any("stream_disconnected" in line for line in (out / "events.jsonl").open()), timeout=60)

        def expected() -> dict[str, int]:
            with sqlite3.connect(out / "vpipe.sqlite") as db:
                stored = db.execute("SELECT time_ms, name, direction FROM events WHERE event = 'line_crossing'")
                per_bin = Counter(f"{name} {direction}|{_bin_start(time_ms)}" for time_ms, name, direction in stored)
            return dict(per_bin)

        def charted() -> dict[str, int] | None:
            bars = bar_counts(browser)
            return bars if bars and {key: n for key, n in bars.items() if n} == expected() else None

        shown = wait_until(charted, timeout=30, interval=0.5)
        events = Counter(f"{record['line']} {record['direction']}" for record in crossings())
        per_series = Counter()
        for key, count in shown.items():
            per_series[key.split("|")[0]] += count
        assert +per_series == events and sum(events.values()) >= 3
        browser.save_screenshot(str(tmp_path / "dashboard.png"))  # for a look when it fails
    finally:
        run.kill()
        camera.stop()


def _bin_start(time_ms: int) -> str:
    from datetime import UTC, datetime

    start_s = time_ms // 10_000 * 10
    return datetime.fromtimestamp(start_s, UTC).isoformat().replace("+00:00", "Z")
