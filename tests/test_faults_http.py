"""Faults of vpipe's own HTTP servers (issue 25's list, the HTTP part): what each one exposes and to
whom, the Host guard they share, and the editor's answers to bodies and files it cannot use.

"Another machine" is 127.0.0.2: a socket bound to 0.0.0.0 accepts it, one bound to 127.0.0.1 refuses it.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.editor.frames import FrameGrabber
from pipeline.editor.server import EditorServer
from pipeline.editor.session import ConfigEditor
from pipeline.io.live.view import LiveView
from tests.conftest import REPO, run_vpipe
from tests.servers.mjpeg import MjpegServer
from tests.test_faults_live import Vpipe
from tests.test_live_end_to_end import free_port

ELSEWHERE = "127.0.0.2"  # stands in for another host


def ask(
    host: str, port: int, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: status, headers, body."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture(scope="module")
def highway_frames(highway: Path) -> FrameGrabber:
    return FrameGrabber(str(highway))


# 1. --serve on every interface exposes the page only, and says so; vpipe edit beyond loopback needs a flag and a token.


def test_1_serve_on_all_interfaces_keeps_the_editors_on_loopback_and_warns_once(tmp_path: Path, highway: Path):
    config = tmp_path / "site.yaml"
    config.write_text("lines:\n  - {name: main, start: [150, 330], end: [830, 330]}\n")
    camera = MjpegServer(highway).start()  # keeps the run going while the test looks (same size: the line fits)
    streams = tmp_path / "cams.streams"
    streams.write_text(f"{highway}\n{camera.url}\n")
    port = free_port()
    vpipe = Vpipe(streams, "--config", config, "--output", tmp_path / "out", "--imgsz", "320", "--no-video",
                  "--serve", port, "--host", "0.0.0.0")  # fmt: skip
    try:
        vpipe.wait_for_stderr("live view:")
        assert ask(ELSEWHERE, port, "/health")[0] in (200, 503)  # the page is what was asked for
        page = ask("127.0.0.1", port, "/")[2].decode()
        editor_port = int(re.search(r'href="http://127\.0\.0\.1:(\d+)/"', page)[1])  # the link works on this machine
        assert refuses_connections(ELSEWHERE, editor_port)
        status, _, state = ask("127.0.0.1", editor_port, "/api/state")
        assert status == 200 and json.loads(state)["lines"][0]["name"] == "main"
        vpipe.stop(signal.SIGTERM)
    finally:
        vpipe.kill()
        camera.stop()
    warnings = [line for line in vpipe.stderr if line.startswith("vpipe: warning:")]
    assert len(warnings) == 1, vpipe.stderr
    assert f"0.0.0.0:{port}" in warnings[0] and "watch the video" in warnings[0] and "127.0.0.1" in warnings[0]
    shown = [line.strip() for line in vpipe.stderr if line.startswith("live view:")]
    assert shown == [f"live view: http://0.0.0.0:{port}/ (all interfaces; on this machine http://127.0.0.1:{port}/)"]
    addresses = [line for line in vpipe.stderr if "live view" in line and "http" in line]
    assert all(f"http://0.0.0.0:{port}/" in line for line in addresses), addresses  # none says 127.0.0.1 alone
    assert vpipe.process.returncode in (0, 130), "".join(vpipe.stderr)  # stopped (130: before the run began), no error


def test_1_vpipe_edit_beyond_loopback_without_the_flag_is_one_line_and_exit_2(tmp_path: Path, highway: Path):
    config = tmp_path / "site.yaml"
    result = run_vpipe("edit", highway, "--config", config, "--host", "0.0.0.0", "--port", "0", timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("vpipe: error: --host 0.0.0.0") and "--allow-remote-edits" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not config.exists()


def test_1_remote_edits_need_the_printed_token_then_its_cookie(tmp_path: Path, highway: Path):
    config = tmp_path / "site.yaml"
    config.write_text("lines:\n  - {name: main, start: [150, 330], end: [830, 330]}\n")
    before = config.read_bytes()
    remote = ["--host", "0.0.0.0", "--port", "0", "--allow-remote-edits"]
    edit = [sys.executable, "-m", "pipeline", "edit", str(highway), "--config", str(config), *remote]
    process = subprocess.Popen(edit, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        warning, editing, opening = (process.stderr.readline() for _ in range(3))
        port, token = re.fullmatch(
            r"open http://0\.0\.0\.0:(\d+)/\?token=(\S+) \(all interfaces; on this machine "
            r"http://127\.0\.0\.1:\1/\?token=\2\) \(Ctrl-C to stop\)\n",
            opening,
        ).groups()
        port = int(port)
        assert warning.startswith(f"vpipe: warning: config editor listens on 0.0.0.0:{port}") and str(config) in warning
        assert token not in warning + editing
        save = json.dumps({"coordinates": "pixels", "lines": [], "zones": [], "slots": []}).encode()
        as_json = {"Content-Type": "application/json"}
        for path, method, body in (("/", "GET", None), ("/api/state", "HEAD", None), ("/api/save", "POST", save)):
            assert ask(ELSEWHERE, port, path, method, body, as_json)[0] == 403, path
            assert ask(ELSEWHERE, port, path + "?token=wrong", method, body, as_json)[0] == 403, path
            forged = {**as_json, "Cookie": f"vpipe-edit-{port}=wrong"}
            assert ask(ELSEWHERE, port, path, method, body, forged)[0] == 403, path
        assert config.read_bytes() == before
        status, headers, _ = ask(ELSEWHERE, port, f"/?token={token}")
        assert status == 200
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"vpipe-edit-{port}={token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        with_cookie = {**as_json, "Cookie": cookie.split(";")[0]}
        assert ask(ELSEWHERE, port, "/editor.js", headers=with_cookie)[0] == 200
        status, _, answer = ask(ELSEWHERE, port, "/api/save", "POST", save, with_cookie)
        assert status == 200, answer
        assert yaml.safe_load(config.read_text())["lines"] == []
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        process.stderr.close()


# 3. One Host guard for every server: a loopback-bound page refuses a name that is not this machine.


def test_3_the_live_page_on_loopback_refuses_a_foreign_host_on_every_path_and_method():
    with LiveView(port=0) as view:
        for path in ("/", "/stream.mjpg", "/counts", "/metrics", "/health"):
            for method in ("GET", "HEAD", "POST"):
                status, _, _ = ask("127.0.0.1", view.port, path, method, headers={"Host": "evil.example"})
                assert status == 403, (method, path)
                status, _, _ = ask("127.0.0.1", view.port, path, method, headers={"Host": f"evil.example:{view.port}"})
                assert status == 403, (method, path)
        for host in (f"127.0.0.1:{view.port}", f"localhost:{view.port}", f"[::1]:{view.port}"):
            assert ask("127.0.0.1", view.port, "/counts", headers={"Host": host})[0] == 200, host


# 9. Bodies and files the editor cannot use: one line, no lost connection, nothing written.


UNUSABLE_BODIES = {
    "nan": b'{"coordinates": "pixels", "lines": [{"name": "a", "start": [NaN, 1], "end": [2, 2]}]}',
    "infinity": b'{"coordinates": "pixels", "lines": [{"name": "a", "start": [Infinity, 1], "end": [2, 2]}]}',
    "overflow": b'{"coordinates": "pixels", "lines": [{"name": "a", "start": [1e999, 1], "end": [2, 2]}]}',
    "5001-digits": b'{"coordinates": "pixels", "zones": [' + b"1" * 5001 + b"]}",
    "deep": b"[" * 100_000,
    "not-utf8": b'{"coordinates": "pixels", "lines": [{"name": "\xff\xfe"}]}',
    "no-points": b'{"coordinates": "pixels", "lines": [{"name": "a"}]}',
    "text-point": b'{"coordinates": "pixels", "lines": [{"name": "a", "start": [1, "x"], "end": [2, 2]}]}',
    "lane": b'{"coordinates": "pixels", "lines": [{"name": "a", "start": [1, 1], "end": [2, 2], "lanes": [{}]}]}',
    "polygon": b'{"coordinates": "pixels", "zones": [{"name": "z", "polygon": 5}]}',
    "corner": b'{"coordinates": "pixels", "slots": [{"name": "s", "polygon": [[1, 2], [3], [4, 5]]}]}',
}


@pytest.mark.parametrize("body", list(UNUSABLE_BODIES.values()), ids=list(UNUSABLE_BODIES))
def test_9_a_body_the_editor_cannot_use_is_a_one_line_400(tmp_path: Path, highway_frames: FrameGrabber, body: bytes):
    config = tmp_path / "site.yaml"
    config.write_text("lines: []\n")
    editor = ConfigEditor(config, highway_frames.width, highway_frames.height)
    with EditorServer(editor, highway_frames, port=0) as server:
        status, headers, answer = ask("127.0.0.1", server.port, "/api/save", "POST", body,
                                      {"Content-Type": "application/json"})  # fmt: skip
    assert status == 400 and headers["Content-Type"] == "application/json"
    error = json.loads(answer)["error"]
    assert error and "\n" not in error
    assert config.read_text() == "lines: []\n"


def test_9_vpipe_edit_on_a_config_that_is_a_video_is_one_line_as_in_vpipe_run(highway: Path):
    edit = run_vpipe("edit", highway, "--config", highway, "--port", "0", timeout=300)
    run = run_vpipe("run", highway, "--config", highway, "--max-frames", "1", timeout=300)
    assert edit.returncode == run.returncode == 2
    assert edit.stderr == run.stderr
    assert edit.stderr.startswith(f"vpipe: error: {highway}: cannot read config file: not UTF-8 text")
    assert edit.stderr.count("\n") == 1


# 6. Saving through a symlinked config writes the file it points to.


def test_6_saving_a_symlinked_config_writes_its_target_and_keeps_the_link(tmp_path: Path, highway_frames: FrameGrabber):
    target = tmp_path / "shared" / "site.yaml"
    target.parent.mkdir()
    target.write_text("# the site's geometry\nlines: []\n")
    link = tmp_path / "site.yaml"
    link.symlink_to(target)
    editor = ConfigEditor(link, highway_frames.width, highway_frames.height)
    line = {"name": "gate", "start": [100, 300], "end": [800, 300], "lanes": [], "src": None}
    body = json.dumps({"coordinates": "pixels", "lines": [line], "zones": [], "slots": []}).encode()
    with EditorServer(editor, highway_frames, port=0) as server:
        status, _, answer = ask(
            "127.0.0.1", server.port, "/api/save", "POST", body, {"Content-Type": "application/json"}
        )
    assert status == 200, answer
    assert link.is_symlink() and link.resolve() == target
    saved = yaml.safe_load(target.read_text())
    assert saved["lines"] == [{"name": "gate", "start": [100, 300], "end": [800, 300]}]
    assert target.read_text().startswith("# the site's geometry\n")
    assert sorted(path.name for path in target.parent.iterdir()) == ["site.yaml"]  # no temporary file left
