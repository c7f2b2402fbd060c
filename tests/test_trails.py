"""Fading trails on synthetic frames with a known moving track."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import supervision as sv

from pipeline.annotators.trails import FadingTraceAnnotator

FPS = 30
SPEED_PX_PER_S = 150  # the anchor moves right 5 px per frame along y = 100


def run_track(annotator: FadingTraceAnnotator, frames: int) -> np.ndarray:
    scene = np.zeros((200, 640, 3), np.uint8)
    for frame_index in range(frames):
        x = 20 + SPEED_PX_PER_S * frame_index / FPS
        detections = sv.Detections(xyxy=np.array([[x - 10, 80.0, x + 10, 100.0]]), tracker_id=np.array([1]))
        scene = annotator.annotate(np.zeros_like(scene), detections, timestamp_s=frame_index / FPS)
    return scene


def column_strength(scene: np.ndarray, x: int) -> int:
    """Brightest pixel in a small window around the trail at column x (white on black)."""
    return int(scene[90:111, x - 1 : x + 2].max())


def column_width(scene: np.ndarray, x: int) -> int:
    """Number of lit rows at column x: the trail's thickness there."""
    return int((scene[80:121, x] > 0).sum())


def test_trail_fades_from_head_to_tail_and_ends_at_trail_seconds():
    annotator = FadingTraceAnnotator(trail_seconds=1.0, thickness=8, color=sv.Color.WHITE)
    scene = run_track(annotator, frames=90)  # 3 s of motion; the head is at x = 20 + 150 * 89 / 30 = 465
    head_x = 20 + SPEED_PX_PER_S * 89 / FPS
    tail_x = head_x - SPEED_PX_PER_S * 1.0  # where the object was trail_seconds ago
    near_head, middle, near_tail = (round(head_x - d) for d in (10, 75, 140))
    strengths = [column_strength(scene, x) for x in (near_head, middle, near_tail)]
    assert strengths[0] > strengths[1] > strengths[2] > 0, strengths
    assert column_width(scene, near_head) > column_width(scene, near_tail)
    # Nothing is drawn where the object was more than trail_seconds ago.
    assert scene[:, : round(tail_x) - 10].max() == 0
    # Nor ahead of the object.
    assert scene[:, round(head_x) + 10 :].max() == 0


def test_trail_of_a_vanished_track_fades_out_and_is_forgotten():
    annotator = FadingTraceAnnotator(trail_seconds=0.5, color=sv.Color.WHITE)
    run_track(annotator, frames=30)
    assert annotator.tracks_held == 1
    empty = sv.Detections.empty()
    scene = annotator.annotate(np.zeros((200, 640, 3), np.uint8), empty, timestamp_s=29 / FPS + 0.25)
    assert scene.max() > 0  # still fading
    scene = annotator.annotate(np.zeros((200, 640, 3), np.uint8), empty, timestamp_s=29 / FPS + 0.6)
    assert scene.max() == 0
    assert annotator.tracks_held == 0


def test_points_per_track_are_capped():
    annotator = FadingTraceAnnotator(trail_seconds=1000.0, max_points=50)
    run_track(annotator, frames=120)
    assert max(len(trail.points) for trail in annotator._trails.values()) == 50


def test_every_visible_segment_is_drawn_at_its_width():
    """Drawing runs of segments as polylines covers exactly what one line per segment covers.

    The reference draws each segment alone with the width the docstring promises (thickness scaled
    by freshness, at least 1); a run boundary off by one would leave a gap or draw a stale segment.
    """
    thickness, trail_seconds = 6, 1.0
    annotator = FadingTraceAnnotator(trail_seconds=trail_seconds, thickness=thickness, color=sv.Color.WHITE)
    scene = np.zeros((240, 640, 3), np.uint8)
    paths = {  # track_id -> anchor at time t: a line, a circle, a zigzag
        1: lambda t: (20 + 150 * t, 60.0),
        2: lambda t: (320 + 80 * np.cos(2 * t), 130 + 80 * np.sin(2 * t)),
        3: lambda t: (600 - 100 * t, 200 + (15 if int(t * 10) % 2 else -15)),
    }
    timestamps = [frame_index / FPS for frame_index in range(75)]
    for timestamp_s in timestamps:
        anchors = np.array([path(timestamp_s) for path in paths.values()])
        boxes = np.column_stack([anchors[:, 0] - 5, anchors[:, 1] - 10, anchors[:, 0] + 5, anchors[:, 1]])
        detections = sv.Detections(xyxy=boxes, tracker_id=np.array(list(paths)))
        scene = annotator.annotate(np.zeros_like(scene), detections, timestamp_s=timestamp_s)
    now = timestamps[-1]
    reference = np.zeros(scene.shape[:2], np.uint8)
    for path in paths.values():
        recent = [t for t in timestamps if t >= now - trail_seconds]
        for t0, t1 in itertools.pairwise(recent):
            freshness = 1.0 - (now - t1) / trail_seconds
            (x0, y0), (x1, y1) = (tuple(round(float(v)) for v in path(t)) for t in (t0, t1))
            width = max(1, round(thickness * freshness))
            cv2.line(reference, (x0, y0), (x1, y1), 255, width, cv2.LINE_AA)
    drawn, expected = scene.max(axis=2) > 0, reference > 0
    overlap = (drawn & expected).sum() / (drawn | expected).sum()
    assert overlap > 0.97, overlap
