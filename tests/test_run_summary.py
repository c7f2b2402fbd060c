"""``RunSummary``: ``summary.json`` read and written as one type, in the files' own layouts.

The expected documents are the layouts ``summary.json`` had before the type existed (a whole run's,
one that failed before its first frame, a batch slice's, a split video's), recorded from
``vpipe run`` and ``vpipe batch --split`` on the sample clips, with the keys that place a run since
(its process and, a whole run's, what it is of and its processes): reading one and writing it back
must give the same keys, in the same order, with the same values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.analytics import Counts
from pipeline.batch.summaries import merge_slices
from pipeline.run.summary import ModelInfo, RunSummary, SlicePart

MODEL = {
    "model": "models/yolo11n.pt",
    "task": "detect",
    "device": "cpu",
    "imgsz": 640,
    "backend": "openvino",
    "precision": "int8",
    "input_size": [384, 640],
    "inference_threads": 1,
    "inference_precision": "bf16",
    "stages": dict.fromkeys(("decode", "letterbox", "inference", "nms", "tracking", "video"), "cpu"),
}
LINES = {"main": {"in": {"car": 4}, "out": {}, "in_total": 4, "out_total": 0}}
INTERVALS = {
    "interval_s": 900.0,
    "peak_hour": {"line:main:in": {"start": "2019-09-27T11:15:00Z", "volume": 4, "phf": None, "phf_reason": "short"}},
}
HEAD = {"source": "highway.mp4", "frames": 335, "fps": 29.97, "width": 960, "height": 540, "duration_s": 11.1778}
TRACKER = {"fps": 29.97, "track_buffer_frames": 30, "new_track_reach_sizes": 0.334}
STATUS = {"detect_every": 1, "output_dir": "runs/highway", "status": "completed"}
PROCESS = {"run_id": "9a3c6f1e0b7d4e2a8c5f3b1d7e9a0c2b", "time_utc": "2026-12-07T15:04:05.123Z"}
RUN = {
    "identity": "0484268a397bc6f9",
    "start_utc": "2019-09-27T11:22:17.000Z",
    "segments": [
        {"run_id": "5f0c", "started_utc": "2026-12-07T14:00:00.000Z", "first_file": 0, "status": "killed"},
        {
            **{"run_id": PROCESS["run_id"]},
            "started_utc": "2026-12-07T15:00:00.000Z",
            "first_file": 1,
            "status": "completed",
        },
    ],
}
"""What places a run: the process that wrote the file, and (a whole run's) what it is of and its processes."""

WHOLE_RUN = {
    **HEAD,
    "processing_fps": 24.54,
    **MODEL,
    **STATUS,
    **PROCESS,
    **RUN,
    "tracker": TRACKER,
    "frames_dropped": 0,
    "frames_skipped": 0,
    "reconnects": 0,
    "inference_threads_trial_fps": {"2": 26.5, "1": 34.9},
    "peak_rss_mb": 1183.2,
    "peak_gpu_mb": None,
    "lines": LINES,
    "zones": {},
    "intervals": INTERVALS,
    "tracks_total": 57,
}
"""A whole ``vpipe run`` (highway.mp4, configs/traffic.yaml)."""

FAILED_BEFORE_FIRST_FRAME = {
    **HEAD,
    "frames": 0,
    "duration_s": 0.0,
    "processing_fps": 0.0,
    **{**MODEL, "inference_threads": None},
    **STATUS,
    "status": "failed",
    **PROCESS,
    **RUN,
    "tracker": TRACKER,
    "frames_dropped": 0,
    "frames_skipped": 0,
    "reconnects": 0,
    "error": "cannot write runs/highway/intervals.csv: Is a directory",
}
"""An output refused at the start: the summary written before the first frame, failed."""

PARKING_AND_STREAMS = {
    **{key: value for key, value in WHOLE_RUN.items() if key not in ("lines", "zones", "intervals", "tracks_total")},
    "lines": {},
    "zones": {"bays": {"max_count": 3, "mean_count": 2.5, "enters": 4, "exits": 1, "inside_at_end": {"7": 2.0}}},
    "parking": {"occupied_at_end": 1, "free_at_end": 1, "slots": {"A1": {"utilisation": 0.5}}},
    "intervals": {"interval_s": 900.0, "peak_hour": {}},
    "tracks_total": 9,
    "error": "stopped by an error",
    "publish": {"mqtt": {"sent": 12, "lost": 0}},
}
"""A whole run with parking, an error and an event stream: the optional sections in their places."""

MOTION_GATE = {
    key: value
    for name, entry in WHOLE_RUN.items()
    for key, value in [(name, entry)] + ([("motion_gate", {"frames_detected": 12, "frames_motion_skipped": 323})]
    if name == "detect_every" else [])
}  # fmt: skip
"""A whole run with ``model.motion_gate``: its frames detected and skipped after ``detect_every``."""

SLICE = {
    "source": "/archive/highway.mp4",
    "part": "part-0001",
    "frames": 126,
    "warmup_frames": 60,
    "start_frame": 126,
    "end_frame": 252,
    "start_s": 4.2042,
    "end_s": 8.4084,
    "fps": 29.97,
    "width": 960,
    "height": 540,
    "duration_s": 4.2042,
    "processing_fps": 9.0,
    **MODEL,
    "detect_every": 1,
    "output_dir": "/out/highway/part-0001",
    "status": "completed",
    **PROCESS,
    "start_utc": "2019-09-27T11:22:17.000Z",
    "lines": LINES,
    "zones": {},
    "movements": {"counts": {"West->East": {"total": 1, "by_class": {"car": 1}}}},
    "tracks_total": 32,
    "intervals": INTERVALS,
}
"""A ``vpipe batch --split`` slice, with movements."""


@pytest.mark.parametrize(
    "document",
    [WHOLE_RUN, FAILED_BEFORE_FIRST_FRAME, PARKING_AND_STREAMS, MOTION_GATE, SLICE],
    ids=["whole", "failed-at-start", "parking-streams", "motion-gate", "slice"],
)
def test_a_summary_reads_and_writes_back_as_the_file_has_it(document: dict[str, Any]):
    summary = RunSummary.from_json(json.loads(json.dumps(document)))
    written = summary.to_json()
    assert list(written) == list(document)
    assert json.dumps(written, indent=2) == json.dumps(document, indent=2)


def test_readers_get_attributes():
    whole, part = RunSummary.from_json(WHOLE_RUN), RunSummary.from_json(SLICE)
    assert (whole.frames, whole.status, whole.model.backend, whole.counts.lines["main"]["in_total"]) == (
        335, "completed", "openvino", 4,
    )  # fmt: skip
    assert whole.model.threads_trial_fps == {"2": 26.5, "1": 34.9} and whole.part is None
    assert part.part == SlicePart("part-0001", 126, 252, 60, 4.2042, 8.4084)
    assert part.counts.movements is not None and RunSummary.from_json(WHOLE_RUN).counts.movements is None
    assert RunSummary.from_json(FAILED_BEFORE_FIRST_FRAME).error.startswith("cannot write")


def test_frames_add_up_to_the_duration_of_a_whole_run_and_of_a_slice():
    model = ModelInfo.from_json(MODEL)
    whole = RunSummary("a.mp4", 10.0, 64, 48, model, detect_every=1, output_dir="out")
    for index in range(3):  # a whole run's time starts at 0
        whole.add_frame(index, index / 10, (index + 1) / 10)
    assert (whole.frames, whole.duration_s) == (3, 0.3)

    part = SlicePart("part-0002", start_frame=20)
    piece = RunSummary("a.mp4", 10.0, 64, 48, model, detect_every=1, output_dir="out", part=part)
    assert piece.to_json()["end_frame"] == 20 and piece.to_json()["start_s"] is None, "nothing counted yet"
    for index in (20, 21):
        piece.add_frame(index, index / 10 + 0.00004, (index + 1) / 10 + 0.00004)  # times of the whole video
    assert (piece.frames, piece.duration_s) == (2, 0.2)
    assert (part.start_frame, part.end_frame, part.start_s, part.end_s) == (20, 22, 2.0, 2.2)


def test_the_summary_written_before_the_first_frame_has_no_counts():
    summary = RunSummary("a.mp4", 10.0, 64, 48, ModelInfo.from_json(MODEL), detect_every=1, output_dir="out")
    written = summary.to_json()
    assert written["status"] == "running" and "lines" not in written and "tracks_total" not in written
    assert RunSummary.from_json(written) == summary


def test_a_split_videos_merged_fields_keep_their_layout():
    """Before ``source``, ``status``, ``output_dir``, ``parts`` and ``intervals``, a split video's
    summary.json has these fields, from its slices."""
    second = RunSummary.from_json({**SLICE, "part": "part-0002", "frames": 83, "duration_s": 2.7694})
    merged = merge_slices([RunSummary.from_json(SLICE), second]).to_json()
    assert list(merged) == [
        "frames", "fps", "width", "height", "model", "task", "device", "imgsz", "backend", "input_size",
        "detect_every", "duration_s", "processing_fps", "lines", "zones", "movements",
    ]  # fmt: skip
    assert (merged["frames"], merged["duration_s"], merged["lines"]["main"]["in_total"]) == (209, 6.9736, 8)
    assert merged["movements"] == {"counts": {"West->East": {"total": 2, "by_class": {"car": 2}}}}
    assert merge_slices([]).to_json() == {
        "frames": 0, "duration_s": 0.0, "processing_fps": 0.0, "lines": {}, "zones": {},
    }  # fmt: skip
    assert Counts({}, {}).to_json() == {"lines": {}, "zones": {}}


def test_a_split_videos_motion_gate_adds_up_its_slices():
    gated = [
        RunSummary.from_json({**SLICE, "motion_gate": {"frames_detected": detected, "frames_motion_skipped": skipped}})
        for detected, skipped in [(100, 26), (30, 96)]
    ]
    merged = merge_slices(gated).to_json()
    assert merged["motion_gate"] == {"frames_detected": 130, "frames_motion_skipped": 122}
    assert list(merged).index("motion_gate") == list(merged).index("detect_every") + 1
