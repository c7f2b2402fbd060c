"""The annotated video's size (``output.video_width``): a wider source is scaled down before drawing,
the drawing lands where the objects are in the smaller frame, and counting is untouched.

The end-to-end test runs the real model on the first 140 frames of highway.mp4 scaled to 1920x1080
(five crossings of the hand count), once at the default width and once at the source's."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import supervision as sv

from pipeline.analytics.views import AnalyticsView, CrosswalkView, LineView, MovementsView, ZoneView
from pipeline.annotators.frame import FrameAnnotator
from pipeline.annotators.scaled import draw_at_size, scaled_detections, scaled_view, video_size
from pipeline.config import Config, DrawConfig
from pipeline.evaluation import load_counted
from pipeline.io.outputs.sinks import H264VideoSink
from tests.conftest import CONFIGS, SAMPLES, run_vpipe
from tests.test_faults_config import write_config

FRAMES = 140
"""highway.mp4's first 140 frames hold five of its crossings (frames 56, 57, 93, 127, 130)."""


def test_the_video_is_the_source_size_up_to_video_width_aspect_kept():
    assert Config().output.video_width == 960
    assert video_size((1920, 1080), 960) == (960, 540)
    assert video_size((1280, 720), 960) == (960, 540)
    assert video_size((2560, 1080), 960) == (960, 406)  # 405 rounded to even
    assert video_size((960, 540), 960) == (960, 540)
    assert video_size((640, 480), 960) == (640, 480)  # never scaled up
    assert video_size((1920, 1080), 0) == (1920, 1080)  # 0: the source's size


def test_boxes_lines_and_zones_are_drawn_where_they_are_in_the_scaled_frame():
    annotator = FrameAnnotator(DrawConfig(labels=False, trails=False), show_masks=False)
    image = np.zeros((1080, 1920, 3), np.uint8)
    box = sv.Detections(
        xyxy=np.array([[400.0, 200.0, 1200.0, 1000.0]]), confidence=np.array([0.9]),
        class_id=np.array([2]), tracker_id=np.array([1]),
    )  # fmt: skip
    zone = ZoneView("bay", np.array([[1400, 100], [1800, 100], [1800, 300], [1400, 300]]), 0)
    view = AnalyticsView(lines=(LineView("main", (0.0, 1060.0), (1920.0, 1060.0), 0, 0),), zones=(zone,))
    drawn = draw_at_size(annotator, image, box, 0.0, view, (960, 540))
    assert drawn.shape == (540, 960, 3)
    assert not image.any()  # the source's frame is not drawn on
    lit = drawn.any(axis=2)
    assert lit[100:500, 200].all() and lit[100:500, 600].all()  # the box's sides at x = 200 and 600
    assert not lit[300, 300:500].any()  # inside the box: nothing; at full size its left side would be at x = 400
    assert lit[530, 100:900].all()  # the line at y = 1060 / 2
    assert lit[60:140, 760].all() and not lit[200:300, 760].any()  # the zone, filled, over y 50 .. 150


def test_masks_are_scaled_with_their_boxes():
    mask = np.zeros((1, 1080, 1920), bool)
    mask[0, 200:400, 600:1000] = True
    detections = sv.Detections(xyxy=np.array([[600.0, 200.0, 1000.0, 400.0]]), mask=mask, class_id=np.array([2]))
    small = scaled_detections(detections, (960, 540), (0.5, 0.5))
    assert small.xyxy.tolist() == [[300.0, 100.0, 500.0, 200.0]]
    assert small.mask is not None and small.mask.shape == (1, 540, 960)
    expected = np.zeros((540, 960), bool)
    expected[100:200, 300:500] = True
    assert np.array_equal(small.mask[0], expected)
    assert detections.xyxy.tolist() == [[600.0, 200.0, 1000.0, 400.0]]  # the tracked boxes stay as they were


@pytest.fixture(scope="module")
def clip_1080p(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """highway.mp4's first frames at 1920x1080, and traffic.yaml's line at that scale."""
    folder = tmp_path_factory.mktemp("1080p")
    clip, config = folder / "highway_1080p.mp4", folder / "traffic_1080p.yaml"
    with av.open(str(SAMPLES / "highway.mp4")) as reader:
        video = reader.streams.video[0]
        with H264VideoSink(clip, 1920, 1080, Fraction(video.average_rate), crf=18, preset="veryfast") as sink:
            for index, frame in enumerate(reader.decode(video)):
                if index == FRAMES:
                    break
                sink.write(cv2.resize(frame.to_ndarray(format="bgr24"), (1920, 1080), interpolation=cv2.INTER_CUBIC))
    text = (CONFIGS / "traffic.yaml").read_text()
    config.write_text(
        text.replace("start: [150, 330]", "start: [300, 660]").replace("end: [830, 330]", "end: [1660, 660]")
    )
    return clip, config


def test_a_1080p_video_is_written_at_video_width_with_the_same_counts(clip_1080p: tuple[Path, Path], tmp_path: Path):
    clip, config = clip_1080p
    full = write_config(tmp_path, config.read_text() + "output:\n  video_width: 0\n")
    outputs = {}
    for name, run_config in (("default", config), ("full", full)):
        result = run_vpipe("run", clip, "--config", run_config, "--output", tmp_path / name, "--quiet")
        assert result.returncode == 0, result.stderr
        outputs[name] = tmp_path / name
    sizes = {}
    for name, out in outputs.items():
        with av.open(str(out / "annotated.mp4")) as video:
            stream = video.streams.video[0]
            sizes[name] = (stream.width, stream.height)
            assert sum(1 for _ in video.decode(stream)) == FRAMES
            assert abs(float(stream.average_rate) - 30000 / 1001) < 0.01
    assert sizes == {"default": (960, 540), "full": (1920, 1080)}
    crossings = {
        name: [(c.line, c.direction, c.frame) for c in load_counted(out / "events.jsonl")]
        for name, out in outputs.items()
    }
    assert crossings["default"] == crossings["full"]
    assert [(line, direction) for line, direction, _ in crossings["default"]] == [("main", "in")] * 5
    rows = {name: (out / "counts.csv").read_text() for name, out in outputs.items()}
    assert rows["default"] == rows["full"]
    summaries = {name: json.loads((out / "summary.json").read_text())["lines"] for name, out in outputs.items()}
    assert summaries["default"] == summaries["full"]


def test_approaches_and_their_gates_are_scaled_with_the_frame():
    gate = np.array([[100.0, 400.0], [300.0, 400.0]])
    view = AnalyticsView(
        movements=MovementsView(
            {"N": np.array([[0.0, 0.0], [200.0, 0.0], [200.0, 200.0]])}, {("N", "S"): 2}, {"N": gate}
        )
    )
    scaled = scaled_view(view, (0.5, 0.25)).movements
    assert scaled is not None
    assert scaled.approaches["N"].tolist() == [[0.0, 0.0], [100.0, 0.0], [100.0, 50.0]]
    assert scaled.gates["N"].tolist() == [[50.0, 100.0], [150.0, 100.0]]
    assert scaled.counts == {("N", "S"): 2}


def test_crosswalks_are_scaled_with_the_frame():
    walk = CrosswalkView("zebra", np.array([[100.0, 400.0], [300.0, 400.0], [300.0, 440.0]]), False, 3)
    view = AnalyticsView(movements=MovementsView({}, {}, crosswalks=(walk,)))
    scaled = scaled_view(view, (0.5, 0.25)).movements
    assert scaled is not None and len(scaled.crosswalks) == 1
    assert scaled.crosswalks[0].points.tolist() == [[50.0, 100.0], [150.0, 100.0], [150.0, 110.0]]
    assert (scaled.crosswalks[0].name, scaled.crosswalks[0].is_line, scaled.crosswalks[0].count) == ("zebra", False, 3)
