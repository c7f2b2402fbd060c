"""vpipe edit without a browser: YAML round trip, saving through vpipe run's validation, server guards, CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import yaml

from pipeline.config import load_config
from pipeline.editor.document import ConfigDocument, Geometry
from pipeline.editor.frames import FrameGrabber
from pipeline.editor.server import EditorServer
from pipeline.editor.session import ConfigEditor
from pipeline.errors import ConfigError
from tests.conftest import CONFIGS, REPO, SAMPLES

WIDTH, HEIGHT = 960, 540

# Every kind of key the editor does not touch, and comments in every place YAML allows them.
CONFIG = """\
# Site A, camera 3 (header comment)
model:
  imgsz: 320            # small and fast
  classes: [car, truck]
tracker:
  track_buffer_s: 2.0
speed:
  image_points: [[300, 100], [500, 100], [700, 500], [100, 500]]
  world_points: [[0, 0], [7, 0], [7, 40], [0, 40]]
lines:
  # the main gate, drawn left to right
  - name: gate
    start: [100, 300]
    end: [800, 300]
    min_crossing_distance: 9.0   # wide hysteresis here
    lanes:
      - {name: left, start: [100, 300], end: [450, 300]}
  - name: exit
    start: [50, 100]
    end: [50, 400]
zones:
  - name: yard   # the yard
    polygon: [[10, 10], [200, 10], [200, 200]]
output:
  crf: 28
"""


def geometry_of(text: str) -> Geometry:
    return ConfigDocument.from_text(text, "site.yaml").geometry(WIDTH, HEIGHT)


def write_back(text: str, geometry: Geometry) -> str:
    return ConfigDocument.from_text(text, "site.yaml").to_text(geometry, WIDTH, HEIGHT)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_a_bundled_config_written_back_unchanged_is_the_same_file_byte_for_byte(path: Path):
    text = path.read_text()
    assert write_back(text, geometry_of(text)) == text


def test_edits_keep_comments_and_every_key_the_editor_does_not_know():
    geometry = geometry_of(CONFIG)
    assert [line["name"] for line in geometry.lines] == ["gate", "exit"]
    gate = geometry.lines[0]
    gate["end"] = [810, 305]
    gate["lanes"][0]["end"] = [460, 302]
    gate["lanes"].append({"name": "right", "start": [460, 302], "end": [810, 305], "src": None})
    geometry.lines[1]["name"] = "way_out"  # renamed
    geometry.zones[0]["polygon"].append([10, 200])
    geometry.zones.append({"name": "kerb", "polygon": [[0, 500], [100, 500], [100, 540]], "src": None})

    text = write_back(CONFIG, geometry)
    for comment in ("# Site A, camera 3", "# small and fast", "# the main gate", "# wide hysteresis", "# the yard"):
        assert comment in text, comment
    data = yaml.safe_load(text)
    original = yaml.safe_load(CONFIG)
    for section in ("model", "tracker", "speed", "output"):
        assert data[section] == original[section]
    assert data["lines"] == [
        {
            "name": "gate",
            "start": [100, 300],
            "end": [810, 305],
            "min_crossing_distance": 9.0,
            "lanes": [
                {"name": "left", "start": [100, 300], "end": [460, 302]},
                {"name": "right", "start": [460, 302], "end": [810, 305]},
            ],
        },
        {"name": "way_out", "start": [50, 100], "end": [50, 400]},
    ]
    assert data["zones"] == [
        {"name": "yard", "polygon": [[10, 10], [200, 10], [200, 200], [10, 200]]},
        {"name": "kerb", "polygon": [[0, 500], [100, 500], [100, 540]]},
    ]
    assert "coordinates" not in data  # pixels, the default, is not spelled out


def test_deleting_every_line_leaves_valid_yaml_with_the_other_comments():
    geometry = geometry_of(CONFIG)
    geometry.lines.clear()
    text = write_back(CONFIG, geometry)
    data = yaml.safe_load(text)
    assert data["lines"] == [] and data["zones"][0]["name"] == "yard"
    assert "# the main gate" not in text  # it described the removed line
    assert "# Site A, camera 3" in text and "# the yard" in text


def test_normalised_coordinates_convert_every_point_including_speed_image_points():
    geometry = geometry_of(CONFIG)
    geometry.coordinates = "normalized"
    text = write_back(CONFIG, geometry)
    data = yaml.safe_load(text)
    assert data["coordinates"] == "normalized"
    assert data["lines"][0]["end"] == [pytest.approx(800 / WIDTH, abs=1e-4), pytest.approx(300 / HEIGHT, abs=1e-4)]
    assert data["speed"]["image_points"][2] == [
        pytest.approx(700 / WIDTH, abs=1e-4),
        pytest.approx(500 / HEIGHT, abs=1e-4),
    ]
    assert data["speed"]["world_points"] == yaml.safe_load(CONFIG)["speed"]["world_points"]  # metres: untouched

    pixels = load_config("site.yaml", text=text).in_pixels(WIDTH, HEIGHT)
    original = load_config("site.yaml", text=CONFIG)
    assert np.allclose(pixels.lines[0].lanes[0].end, original.lines[0].lanes[0].end, atol=0.1)
    assert np.allclose(pixels.zones[0].polygon, original.zones[0].polygon, atol=0.1)
    assert np.allclose(pixels.speed.image_points, original.speed.image_points, atol=0.1)

    # and back: the page reads normalised files in pixels
    back = geometry_of(text)
    assert back.coordinates == "normalized"
    assert np.allclose(back.lines[0]["end"], [800, 300], atol=0.1)
    back.coordinates = "pixels"
    again = yaml.safe_load(write_back(text, back))
    assert again["coordinates"] == "pixels" and again["speed"]["image_points"][2] == [700, 500]


MOVEMENTS = """\
movements:   # the junction
  min_outside_s: 0.8   # slow U-turns here
  approaches:
    # the north leg
    - name: North
      polygon: [[400, 0], [560, 0], [560, 100], [400, 100]]
      gate: [[400, 100], [560, 100]]   # the stop line
    - name: South   # gate only
      gate: [[560, 500], [400, 500]]
  crosswalks:
    - {name: zebra, line: [[380, 120], [380, 160]]}   # across the west kerb
"""


def test_approaches_and_crosswalks_round_trip_with_their_comments_and_other_keys():
    geometry = geometry_of(CONFIG + MOVEMENTS)
    assert geometry.approaches == [
        {
            "name": "North",
            "src": 0,
            "polygon": [[400, 0], [560, 0], [560, 100], [400, 100]],
            "gate": [[400, 100], [560, 100]],
        },
        {"name": "South", "src": 1, "polygon": None, "gate": [[560, 500], [400, 500]]},
    ]
    assert geometry.crosswalks == [{"name": "zebra", "src": 0, "line": [[380, 120], [380, 160]], "polygon": None}]

    north, south = geometry.approaches
    north["gate"] = None  # the polygon alone now
    north["polygon"][2] = [570, 110]
    south["gate"].reverse()  # flipped
    south["polygon"] = [[400, 500], [560, 500], [560, 540], [400, 540]]
    geometry.approaches.append({"name": "West", "polygon": None, "gate": [[0, 300], [0, 200]], "src": None})
    geometry.crosswalks.append(
        {"name": "east", "line": None, "polygon": [[600, 200], [640, 200], [640, 300]], "src": None}
    )
    text = write_back(CONFIG + MOVEMENTS, geometry)
    for comment in (
        "# the junction",
        "# slow U-turns here",
        "# the north leg",
        "# gate only",
        "# across the west kerb",
    ):
        assert comment in text, comment
    assert "# the stop line" not in text  # it went with the gate
    movements = yaml.safe_load(text)["movements"]
    assert movements["min_outside_s"] == 0.8
    assert movements["approaches"] == [
        {"name": "North", "polygon": [[400, 0], [560, 0], [570, 110], [400, 100]]},
        {
            "name": "South",
            "gate": [[400, 500], [560, 500]],
            "polygon": [[400, 500], [560, 500], [560, 540], [400, 540]],
        },
        {"name": "West", "gate": [[0, 300], [0, 200]]},
    ]
    assert movements["crosswalks"] == [
        {"name": "zebra", "line": [[380, 120], [380, 160]]},
        {"name": "east", "polygon": [[600, 200], [640, 200], [640, 300]]},
    ]
    assert yaml.safe_load(text)["lines"] == yaml.safe_load(CONFIG)["lines"]


def test_approaches_and_crosswalks_are_written_in_the_files_unit_and_create_the_section():
    geometry = geometry_of(CONFIG)
    assert geometry.approaches == [] and geometry.crosswalks == []
    geometry.coordinates = "normalized"
    geometry.approaches += [
        {"name": "A", "polygon": [[0, 0], [96, 0], [96, 54]], "gate": None, "src": None},
        {"name": "B", "polygon": None, "gate": [[480, 540], [960, 270]], "src": None},
    ]
    geometry.crosswalks.append({"name": "C", "line": [[480, 0], [480, 54]], "polygon": None, "src": None})
    movements = yaml.safe_load(write_back(CONFIG, geometry))["movements"]
    assert movements == {
        "approaches": [
            {"name": "A", "polygon": [[0, 0], [0.1, 0], [0.1, 0.1]]},
            {"name": "B", "gate": [[0.5, 1], [1, 0.5]]},
        ],
        "crosswalks": [{"name": "C", "line": [[0.5, 0], [0.5, 0.1]]}],
    }


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(CONFIG)
    return path


def test_an_edit_vpipe_run_would_reject_raises_and_writes_nothing(site: Path):
    editor = ConfigEditor(site, WIDTH, HEIGHT)
    state = editor.state()
    assert state["problem"] is None
    before = site.read_bytes()
    page = {key: state[key] for key in ("coordinates", "lines", "zones", "slots")}

    two_points = json.loads(json.dumps(page))
    two_points["zones"][0]["polygon"] = [[10, 10], [200, 10]]
    with pytest.raises(ConfigError, match=r"site\.yaml: zones\[0\]\.polygon: expected a list of at least 3 points"):
        editor.save(two_points)

    outside = json.loads(json.dumps(page))
    outside["lines"][1]["end"] = [50, 541]
    with pytest.raises(ConfigError, match=r"lines\[1\] \(exit\): point \(50, 541\) is outside the 960x540 frame"):
        editor.save(outside)

    twice = json.loads(json.dumps(page))
    twice["lines"][1]["name"] = "gate"
    with pytest.raises(ConfigError, match="names must be unique, gate repeated"):
        editor.save(twice)

    assert site.read_bytes() == before
    assert [p.name for p in site.parent.iterdir()] == ["site.yaml"]  # no temporary file left behind

    page["lines"][1]["end"] = [60, 400]
    assert editor.save(page) == f"saved 2 lines, 1 zone, 0 slots to {site} (pixels)"
    assert load_config(site).lines[1].end == (60.0, 400.0)


def test_a_wrong_way_gate_or_a_single_approach_is_refused_and_writes_nothing(tmp_path: Path):
    site = tmp_path / "site.yaml"
    site.write_text(CONFIG.replace("  classes: [car, truck]\n", ""))  # a person class kept: crosswalks count
    editor = ConfigEditor(site, WIDTH, HEIGHT)
    before = site.read_bytes()
    north = {"name": "N", "polygon": [[400, 0], [560, 0], [560, 100], [400, 100]], "gate": None}
    south = {"name": "S", "polygon": None, "gate": [[400, 500], [560, 500]]}  # the intersection on its left
    with pytest.raises(
        ConfigError, match=r"site\.yaml: .*approaches\[1\]\.gate \(S\): every other approach lies on its left"
    ):
        editor.save({"coordinates": "pixels", "approaches": [north, south]})
    with pytest.raises(ConfigError, match=r"site\.yaml: movements.*a movement needs at least 2 approaches"):
        editor.save({"coordinates": "pixels", "approaches": [north]})
    assert site.read_bytes() == before

    south["gate"].reverse()
    walk = {"name": "W", "line": [[380, 120], [380, 160]], "polygon": None}
    message = editor.save({"coordinates": "pixels", "approaches": [north, south], "crosswalks": [walk]})
    assert message == f"saved 0 lines, 0 zones, 0 slots, 2 approaches, 1 crosswalk to {site} (pixels)"
    loaded = load_config(site).movements
    assert [(a.name, a.polygon, a.gate) for a in loaded.approaches] == [
        ("N", [(400, 0), (560, 0), (560, 100), (400, 100)], None),
        ("S", None, [(560, 500), (400, 500)]),
    ]
    assert [(c.name, c.line) for c in loaded.crosswalks] == [("W", [(380, 120), (380, 160)])]


def test_saving_creates_a_missing_config_that_loads(tmp_path: Path):
    path = tmp_path / "new" / "cam.yaml"
    editor = ConfigEditor(path, WIDTH, HEIGHT)
    assert editor.state()["exists"] is False
    editor.save({"coordinates": "pixels", "lines": [{"name": "a", "start": [0, 10], "end": [960, 10]}]})
    assert load_config(path).lines[0].end == (960.0, 10.0)


def test_slots_from_a_slots_file_are_shown_but_stay_in_their_file(tmp_path: Path):
    shutil.copytree(CONFIGS / "slots", tmp_path / "slots")
    path = tmp_path / "parking.yaml"
    path.write_text("parking:\n  slots_file: slots/lot_topdown.yaml   # relative to this file\n")
    editor = ConfigEditor(path, 768, 432)  # the frame size lot_topdown.yaml was labelled on
    state = editor.state()
    file_slots = yaml.safe_load((CONFIGS / "slots" / "lot_topdown.yaml").read_text())
    assert [s["name"] for s in state["file_slots"]] == [s["name"] for s in file_slots]
    assert state["slots"] == []

    bay = {"name": "extra", "polygon": [[0, 0], [30, 0], [30, 50], [0, 50]], "src": None}
    editor.save({"coordinates": "pixels", "lines": [], "zones": state["zones"], "slots": [bay]})
    config = load_config(path)
    assert [s.name for s in config.parking.slots] == ["extra", *(s["name"] for s in file_slots)]
    assert "slots_file: slots/lot_topdown.yaml   # relative to this file" in path.read_text()


# -- the server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def highway_frames() -> FrameGrabber:
    return FrameGrabber(str(SAMPLES / "highway.mp4"))


@pytest.fixture
def server(site: Path, highway_frames: FrameGrabber) -> Any:
    with EditorServer(ConfigEditor(site, WIDTH, HEIGHT), highway_frames, port=0) as running:
        yield running


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers or {}), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_frame_n_is_the_source_frame_n(server: EditorServer, highway: Path):
    status, jpeg = request(server.url + "frame.jpg?index=100")
    assert status == 200
    shown = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    with av.open(str(highway)) as container:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(101), container.decode(video=0), strict=False)]
    assert shown.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(shown - frames[100]).mean() < 3  # JPEG noise only
    assert np.abs(shown - frames[0]).mean() > 3 * np.abs(shown - frames[100]).mean()  # not another frame


def test_pages_come_from_the_package_with_a_policy_that_allows_nothing_from_elsewhere(server: EditorServer):
    with urllib.request.urlopen(server.url, timeout=5) as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert '<script src="editor.js">' in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for name in ("editor.js", "geometry.js", "editor.css"):
        status, body = request(server.url + name)
        assert status == 200 and len(body) > 500


def test_requests_from_elsewhere_are_refused_and_write_nothing(server: EditorServer, site: Path):
    before = site.read_bytes()
    save = server.url + "api/save"
    body = json.dumps({"coordinates": "pixels", "lines": [], "zones": [], "slots": []}).encode()
    as_json = {"Content-Type": "application/json"}
    # DNS rebinding: a page on evil.example whose name now points at 127.0.0.1
    assert request(server.url + "api/state", headers={"Host": "evil.example"})[0] == 403
    assert request(save, body, {**as_json, "Host": f"evil.example:{server.port}"})[0] == 403
    # a cross-site form or fetch
    assert request(save, body, {**as_json, "Origin": "http://evil.example"})[0] == 403
    assert request(save, body, {"Content-Type": "text/plain"})[0] == 415
    assert request(save, b"{not json", as_json)[0] == 400
    assert site.read_bytes() == before
    status, answer = request(save, body, {**as_json, "Origin": server.url.rstrip("/")})
    assert status == 200, answer
    assert yaml.safe_load(site.read_text())["lines"] == []


def test_an_invalid_save_answers_400_with_the_error(server: EditorServer, site: Path):
    state = json.loads(request(server.url + "api/state")[1])
    state["zones"][0]["polygon"] = [[1, 1], [2, 2]]
    body = json.dumps({key: state[key] for key in ("coordinates", "lines", "zones", "slots")}).encode()
    status, answer = request(server.url + "api/save", body, {"Content-Type": "application/json"})
    assert status == 400
    assert "zones[0].polygon: expected a list of at least 3 points" in json.loads(answer)["error"]


# -- the preview: the detector on the frame the page shows ------------------------------------


def test_the_preview_detects_with_the_files_model_settings_and_anchors_at_the_bottom_centre(
    tmp_path: Path, highway_frames: FrameGrabber
):
    config = tmp_path / "cars.yaml"
    config.write_text("model:\n  classes: [car]\n  conf: 0.5\n")
    as_json = {"Content-Type": "application/json"}
    with EditorServer(ConfigEditor(config, WIDTH, HEIGHT), highway_frames, port=0) as server:
        assert server.preview.detector is None  # not loaded before a preview is asked for
        status, body = request(server.url + "api/preview", b'{"index": 56}', as_json)
        assert status == 200, body
        answer = json.loads(body)
        detector = server.preview.detector
        assert answer["index"] == 56 and answer["model"].endswith("yolo11n.pt")
        detections = answer["detections"]
        # tests/data/highway_ground_truth.yaml: at frame 56 two cars' front bumpers are on line main (y=330)
        on_line = [d for d in detections if abs(d["anchor"][1] - 330) < 15 and 150 < d["anchor"][0] < 830]
        assert len(on_line) >= 2, detections
        for d in detections:
            assert set(d) == {"class_name", "confidence", "box", "anchor"}
            assert d["class_name"] == "car" and d["confidence"] >= 0.5  # the file's classes and conf
            x1, y1, x2, y2 = d["box"]
            assert x1 < x2 and y1 < y2
            assert d["anchor"] == [pytest.approx((x1 + x2) / 2, abs=0.1), pytest.approx(y2, abs=0.1)]

        assert json.loads(request(server.url + "api/preview", b'{"index": 56}', as_json)[1]) == answer
        assert server.preview.detector is detector  # loaded once, reused

        config.write_text("model:\n  classes: [car]\n  conf: 0.3\n")  # an edit of the file applies to the next one
        lower = json.loads(request(server.url + "api/preview", b'{"index": 56}', as_json)[1])["detections"]
        assert len(lower) > len(detections) and min(d["confidence"] for d in lower) < 0.5


def test_a_preview_from_elsewhere_is_refused_and_a_model_that_does_not_load_is_one_line(
    tmp_path: Path, highway_frames: FrameGrabber
):
    config = tmp_path / "site.yaml"
    config.write_text("model:\n  weights: nope.pt\n")
    with EditorServer(ConfigEditor(config, WIDTH, HEIGHT), highway_frames, port=0) as server:
        preview = server.url + "api/preview"
        as_json = {"Content-Type": "application/json"}
        assert request(preview, b'{"index": 0}', {**as_json, "Origin": "http://evil.example"})[0] == 403
        assert request(preview, b'{"index": 0}', {**as_json, "Host": f"evil.example:{server.port}"})[0] == 403
        assert request(preview, b'{"index": 0}', {"Content-Type": "text/plain"})[0] == 415
        assert request(preview, b'{"index": -1}', as_json)[0] == 400
        assert request(server.url + "api/preview?index=0")[0] == 404  # a link or an <img> cannot run the model

        status, body = request(preview, b'{"index": 0}', {**as_json, "Origin": server.url.rstrip("/")})
        assert status == 503
        error = json.loads(body)["error"]
        assert "model 'nope.pt' not found" in error and "\n" not in error
        assert server.preview.detector is None


# -- the command -------------------------------------------------------------------------------


def test_vpipe_edit_on_a_missing_source_is_one_line_and_exit_2(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "edit", str(tmp_path / "nope.mp4"), "--config", str(tmp_path / "c.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("vpipe: error: ") and "nope.mp4: no such file" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "c.yaml").exists()


def test_vpipe_edit_serves_until_interrupted(tmp_path: Path, highway: Path):
    config = tmp_path / "traffic.yaml"
    shutil.copy(CONFIGS / "traffic.yaml", config)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "edit", str(highway), "--config", str(config), "--port", "0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "960x540" in process.stderr.readline()
        url = process.stderr.readline().split()[1]
        state = json.loads(request(url + "api/state")[1])
        assert state["lines"][0]["start"] == [150, 330] and state["width"] == WIDTH
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        process.stderr.close()


def test_vpipe_run_serve_starts_an_editor_per_source_it_can_open(tmp_path: Path, highway: Path):
    from contextlib import ExitStack

    from pipeline.editor.cli import start_editors

    with ExitStack() as stack:
        specs = [str(highway), "0", str(tmp_path / "missing.mp4")]  # a webcam opens once: the run holds it
        links = start_editors(stack, specs, None)
        assert list(links) == [f"edit lines and zones of {highway}"]
        url = links[f"edit lines and zones of {highway}"] + "api/state"
        state = json.loads(request(url)[1])
        assert state["config"] == "highway.yaml" and state["width"] == WIDTH  # the default: <source name>.yaml
    with pytest.raises(urllib.error.URLError):  # closed with the run
        urllib.request.urlopen(url, timeout=5)
