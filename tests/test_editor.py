"""vpipe edit in a real headless Chromium: mouse actions on a frame of highway.mp4, saved, then ``vpipe run``.

Expected coordinates are where the test clicked (bays: an independent perspective split with
OpenCV's homography), and expected counts are the ground truth in tests/data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from pipeline.config import load_config
from pipeline.editor.frames import FrameGrabber
from pipeline.editor.server import EditorServer
from pipeline.editor.session import ConfigEditor
from tests.conftest import CONFIGS, GROUND_TRUTH, SAMPLES, run_vpipe, wait_until

WIDTH, HEIGHT = 960, 540
TRAFFIC = (CONFIGS / "traffic.yaml").read_text()


class EditorPage:
    """The editor page, driven with mouse actions at source-pixel positions on the frame."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        driver.set_window_size(1400, 900)  # room for the 960x540 frame at its own size
        driver.get(url)
        wait_until(lambda: self.script("return document.getElementById('config-name').textContent"), timeout=10)
        wait_until(lambda: self.script("return document.getElementById('frame').naturalWidth") == WIDTH, timeout=10)

    def script(self, code: str, *args: Any) -> Any:
        return self.driver.execute_script(code, *args)

    def _screen(self, x: float, y: float) -> tuple[int, int]:
        rect = self.script("return document.getElementById('overlay').getBoundingClientRect().toJSON()")
        assert rect["width"] == WIDTH, "the frame is not shown at its own size: clicks would round"
        return round(rect["left"] + x), round(rect["top"] + y)

    def _actions(self) -> Any:
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        return ActionBuilder(self.driver)

    def click(self, x: float, y: float) -> None:
        actions = self._actions()
        actions.pointer_action.move_to_location(*self._screen(x, y)).click()
        actions.perform()

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        actions = self._actions()
        pointer = actions.pointer_action
        pointer.move_to_location(*self._screen(*start)).pointer_down()
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        pointer.move_to_location(*self._screen(*middle)).move_to_location(*self._screen(*end)).pointer_up()
        actions.perform()

    def press(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, selector).click()

    def type_into(self, element_id: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        field = self.driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(text)

    def in_label_y(self) -> float:
        """Where the "in" label of the (only) line is drawn."""
        return float(
            self.script(
                "return [...document.querySelectorAll('text')].find(t => t.textContent === 'in').getAttribute('y')"
            )
        )

    def save(self) -> tuple[str, str]:
        """Press Save; the status line's text and class once the answer is in."""
        self.press("#save")
        status = wait_until(
            lambda: self.script(
                "const s = document.getElementById('status');"
                "return s.className === 'ok' || s.className === 'error' ? [s.textContent, s.className] : null"
            ),
            timeout=20,
        )
        return status[0], status[1]


@pytest.fixture
def editing(tmp_path: Path, browser: Any) -> Iterator[tuple[EditorPage, Path]]:
    """The editor on highway.mp4 for configs/traffic.yaml without its line, in the browser."""
    config = tmp_path / "traffic.yaml"
    config.write_text(TRAFFIC[: TRAFFIC.index("\nlines:")] + "\n")
    frames = FrameGrabber(str(SAMPLES / "highway.mp4"))
    with EditorServer(ConfigEditor(config, frames.width, frames.height), frames, port=0) as server:
        yield EditorPage(browser, server.url), config


def count(config: Path, out: Path) -> dict[str, Any]:
    result = run_vpipe("run", SAMPLES / "highway.mp4", "--config", config, "--output", out, "--no-video", "--quiet")
    assert result.returncode == 0, result.stderr
    return json.loads((out / "summary.json").read_text())["lines"]


def test_a_line_drawn_and_flipped_in_the_browser_counts_like_the_bundled_config(editing, tmp_path: Path):
    page, config = editing
    page.press("[data-tool=line]")
    page.click(830, 330)  # drawn right to left: "in" is up the image
    page.click(150, 330)
    assert page.in_label_y() < 330
    page.press("#flip")
    assert page.in_label_y() > 330  # left to right now: "in" is down, toward the camera
    page.type_into("name", "main")
    text, kind = page.save()
    assert kind == "ok", text

    saved = config.read_text()
    assert saved.startswith("# Vehicle counting on sample_videos/highway.mp4")
    assert yaml.safe_load(saved)["lines"] == [{"name": "main", "start": [150, 330], "end": [830, 330]}]
    assert yaml.safe_load(saved)["model"] == yaml.safe_load(TRAFFIC)["model"]

    truth = yaml.safe_load((GROUND_TRUTH / "highway_ground_truth.yaml").read_text())["lines"]["main"]["crossings"]
    edited = count(config, tmp_path / "edited")["main"]
    bundled = count(CONFIGS / "traffic.yaml", tmp_path / "bundled")["main"]
    assert (edited["in_total"], edited["out_total"]) == (bundled["in_total"], bundled["out_total"])
    assert (edited["in_total"], edited["out_total"]) == (len(truth), 0) == (11, 0)


def test_approaches_with_a_flipped_gate_and_a_crosswalk_are_saved_where_they_were_drawn(editing):
    page, config = editing
    # a pedestrian class kept, as crosswalks need (the page read the file already: saving merges into it)
    config.write_text(config.read_text().replace("classes: [car, motorcycle,", "classes: [person, car, motorcycle,"))
    page.press("[data-tool=approach]")  # "far": where vehicles come from, up the carriageway
    for corner in [(250, 180), (720, 180), (760, 240), (220, 240)]:
        page.click(*corner)
    page.press("#finish")
    page.type_into("name", "far")
    page.press("[data-tool=gate]")  # its gate, the approach being selected: left to right, the junction below
    page.click(230, 250)
    page.click(750, 250)
    page.drag((720, 180), (700, 175))

    page.click(60, 520)  # nothing there: nothing selected, so the next gate is a new approach
    page.press("[data-tool=gate]")
    page.click(150, 420)  # left to right: "far" lies on its left, the wrong way round for a way out
    page.click(830, 420)
    page.type_into("name", "near")
    page.press("[data-tool=walk-line]")
    page.click(100, 470)
    page.click(100, 520)
    page.type_into("name", "zebra")

    before = config.read_bytes()
    text, kind = page.save()
    assert kind == "error"
    assert f"{config}: movements: approaches[1].gate (near): every other approach lies on its left" in text
    assert config.read_bytes() == before

    page.script("[...document.querySelectorAll('#list-approaches li')].find(li => li.textContent === 'near').click()")
    page.press("#flip")
    text, kind = page.save()
    assert kind == "ok", text
    assert "2 approaches, 1 crosswalk" in text
    movements = yaml.safe_load(config.read_text())["movements"]
    assert movements == {
        "approaches": [
            {
                "name": "far",
                "polygon": [[250, 180], [700, 175], [760, 240], [220, 240]],
                "gate": [[230, 250], [750, 250]],
            },
            {"name": "near", "gate": [[830, 420], [150, 420]]},
        ],
        "crosswalks": [{"name": "zebra", "line": [[100, 470], [100, 520]]}],
    }
    loaded = load_config(config).movements  # as vpipe run reads it
    assert [(a.name, a.gate) for a in loaded.approaches] == [
        ("far", [(230, 250), (750, 250)]),
        ("near", [(830, 420), (150, 420)]),
    ]
    assert [(c.name, c.line, c.polygon) for c in loaded.crosswalks] == [("zebra", [(100, 470), (100, 520)], None)]


def test_only_the_gate_or_only_the_polygon_of_an_approach_is_removed(editing):
    page, config = editing
    config.write_text(
        config.read_text()
        + "movements:\n"
        + "  approaches:\n"
        + "    # up the carriageway\n"
        + "    - name: far\n"
        + "      polygon: [[250, 180], [720, 180], [760, 240], [220, 240]]\n"
        + "      gate: [[230, 250], [750, 250]]\n"
        + "    - name: near\n"
        + "      polygon: [[150, 430], [830, 430], [830, 500], [150, 500]]\n"
        + "      gate: [[830, 420], [150, 420]]\n"
    )
    page = EditorPage(page.driver, page.driver.current_url)  # the page reads the file as it is now
    shown = "return [document.getElementById('remove-gate').hidden, document.getElementById('remove-polygon').hidden]"
    page.click(490, 210)  # inside far's polygon: far selected
    assert page.script("return document.getElementById('name').value") == "far"
    assert page.script(shown) == [False, False]
    page.press("#remove-gate")
    assert page.script(shown) == [True, True]  # a polygon alone: only Delete, which removes the approach
    page.script("[...document.querySelectorAll('#list-approaches li')].find(li => li.textContent === 'near').click()")
    page.press("#remove-polygon")
    text, kind = page.save()
    assert kind == "ok", text

    saved = config.read_text()
    assert "    # up the carriageway\n    - name: far\n" in saved  # the item's comment kept
    assert yaml.safe_load(saved)["movements"] == {
        "approaches": [
            {"name": "far", "polygon": [[250, 180], [720, 180], [760, 240], [220, 240]]},
            {"name": "near", "gate": [[830, 420], [150, 420]]},
        ]
    }
    loaded = load_config(config).movements  # as vpipe run reads it
    assert [(a.name, a.polygon is None, a.gate) for a in loaded.approaches] == [
        ("far", False, None),
        ("near", True, [(830, 420), (150, 420)]),
    ]


def perspective_bays(quad: list[tuple[float, float]], columns: int) -> np.ndarray:
    """A row of bays cut at equal steps on the ground: the unit square mapped onto ``quad``."""
    square = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])
    homography = cv2.getPerspectiveTransform(square, np.float32(quad))
    corners = [
        [[c / columns, 0], [(c + 1) / columns, 0], [(c + 1) / columns, 1], [c / columns, 1]] for c in range(columns)
    ]
    return cv2.perspectiveTransform(np.float64(corners).reshape(-1, 1, 2), homography).reshape(columns, 4, 2)


def test_a_zone_corner_dragged_and_a_row_of_bays_are_saved_where_they_were_drawn(editing):
    page, config = editing
    page.press("[data-tool=zone]")
    for corner in [(100, 100), (300, 100), (300, 250), (100, 250)]:
        page.click(*corner)
    page.press("#finish")
    page.drag((300, 250), (340, 270))

    # A row receding from the camera (p0 -> p1 runs along it): equal bays on the ground look shorter far away.
    quad = [(300, 500), (440, 200), (540, 200), (600, 500)]
    page.type_into("grid-rows", "1")
    page.type_into("grid-cols", "4")
    page.press("[data-tool=grid]")
    for corner in quad:
        page.click(*corner)
    text, kind = page.save()
    assert kind == "ok", text
    assert "1 zone, 4 slots" in text

    loaded = load_config(config)  # as vpipe run reads it
    assert [zone.polygon for zone in loaded.zones] == [[(100, 100), (300, 100), (340, 270), (100, 250)]]
    assert len(loaded.parking.slots) == 4 and len({slot.name for slot in loaded.parking.slots}) == 4
    bays = np.array([slot.polygon for slot in loaded.parking.slots])
    assert np.abs(bays - perspective_bays(quad, 4)).max() < 1.0
    lengths = np.linalg.norm(bays[:, 1] - bays[:, 0], axis=1)  # along the row's first side
    assert np.all(np.diff(lengths) < -5), lengths  # each bay shorter than the nearer one
    even_split = np.linspace(quad[0], quad[1], 5)[:4]  # what ignoring perspective would give
    assert np.abs(bays[:, 0] - even_split).max() > 20


def test_a_zone_with_two_points_shows_the_error_and_writes_nothing(editing):
    page, config = editing
    before = config.read_bytes()
    page.press("[data-tool=zone]")
    page.click(100, 100)
    page.click(300, 100)
    page.press("#finish")
    text, kind = page.save()
    assert kind == "error"
    assert f"{config}: zones[0].polygon: expected a list of at least 3 points" in text
    assert config.read_bytes() == before
    assert [p.name for p in config.parent.iterdir() if p.is_file()] == ["traffic.yaml"]  # no temporary file


def drawn_detections(page: EditorPage) -> list[tuple[list[float], list[float]]]:
    """The preview's (box x1 y1 x2 y2, anchor x y) pairs as drawn on the page, in source pixels."""
    return page.script(
        "const f = (n, ks) => ks.map(k => parseFloat(n.getAttribute(k)));"
        "const boxes = [...document.querySelectorAll('rect.detection')].map(r => f(r, ['x', 'y', 'width', 'height']));"
        "const dots = [...document.querySelectorAll('circle.anchor')].map(c => f(c, ['cx', 'cy']));"
        "return boxes.length === dots.length ? boxes.map(([x, y, w, h], i) => [[x, y, x + w, y + h], dots[i]]) : null"
    )


def test_preview_shows_where_the_anchors_of_the_cars_on_frame_56_fall(editing):
    page, _ = editing
    page.type_into("frame-index", "56")
    page.press("#reload-frame")
    wait_until(lambda: page.script("const i = document.getElementById('frame'); return i.complete && i.src"), 10)
    assert "index=56" in page.script("return document.getElementById('frame').src")
    assert drawn_detections(page) == []
    page.press("#preview")
    status = wait_until(
        lambda: page.script("const s = document.getElementById('status'); return s.className && s.textContent"), 120
    )
    assert page.script("return document.getElementById('status').className") == "ok", status

    shown = drawn_detections(page)
    # tests/data/highway_ground_truth.yaml: at frame 56 two cars' front bumpers reach line main (y=330)
    on_line = [anchor for _, anchor in shown if abs(anchor[1] - 330) < 15 and 150 < anchor[0] < 830]
    assert len(on_line) >= 2, shown
    for (x1, y1, x2, y2), (x, y) in shown:
        assert x1 < x < x2 and y1 < y
        assert x == pytest.approx((x1 + x2) / 2, abs=0.1) and y == pytest.approx(y2, abs=0.1)  # the bottom centre

    page.press("#show-detections")  # toggled off: the geometry alone
    assert drawn_detections(page) == []
    page.press("#show-detections")
    assert drawn_detections(page) == shown
    page.press("#reload-frame")  # another frame (or a fresh one): the boxes were on the old one
    assert drawn_detections(page) == []


def test_a_model_that_cannot_load_is_one_line_on_the_page(editing):
    page, config = editing
    config.write_text(TRAFFIC.replace("  task: detect\n", "  task: detect\n  weights: nope.pt\n"))
    page.press("#preview")
    wait_until(lambda: page.script("return document.getElementById('status').className") == "error", 60)
    text = page.script("return document.getElementById('status').textContent")
    assert "model 'nope.pt' not found" in text and "\n" not in text
    assert drawn_detections(page) == []


def test_the_live_page_links_to_each_source_editor(tmp_path: Path, browser: Any):
    from selenium.webdriver.common.by import By

    from pipeline.editor.cli import start_editors
    from pipeline.io.live.view import LiveView

    config = tmp_path / "traffic.yaml"
    config.write_text(TRAFFIC)
    with ExitStack() as stack:
        links = start_editors(stack, [str(SAMPLES / "highway.mp4")], str(config))
        view = stack.enter_context(LiveView(port=0, links=links))
        browser.get(view.url)
        link = browser.find_element(By.CSS_SELECTOR, "#links a")
        assert link.text == f"edit lines and zones of {SAMPLES / 'highway.mp4'}"
        link.click()
        page = EditorPage(browser, browser.current_url)
        assert page.script("return document.getElementById('config-name').textContent") == str(config)
        assert page.script("return [...document.querySelectorAll('#list-lines li')].map(li => li.textContent)") == [
            "main"
        ]
