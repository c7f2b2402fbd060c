"""The config sections that are not geometry: source, model, tracker, event streams, drawing, outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pipeline.config.fields import ENV_NAME, TIME_FORMAT, UNIT_INTERVAL, check, parse_rotation, parse_time
from pipeline.durations import is_duration

ReadPolicy = Literal["auto", "latest", "all"]
Task = Literal["detect", "segment"]
Backend = Literal["auto", "torch", "onnx", "openvino"]
Precision = Literal["auto", "fp32", "int8"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
"""x264's speed presets, fastest first."""


@dataclass
class SourceConfig:
    """Where frames come from. The CLI's SOURCE argument overrides ``path``."""

    path: str | None = None
    fps: float = field(default=30.0, metadata=check(lambda v: 0.001 <= v <= 1000, "a frame rate from 0.001 to 1000"))
    """Frame rate for image folders, which carry no timestamps. At least 0.001 (a frame every 1000 s): the
    video's frame rate is a fraction with a denominator of at most 1001."""
    max_frames: int | None = field(default=None, metadata=check(lambda v: v is None or v > 0, "a positive integer"))
    read_policy: ReadPolicy = "auto"
    """latest: drop old frames so processing never lags a live feed; all: process every frame;
    auto: latest for webcams and streams, all for files and images."""
    stall_timeout_s: float = field(default=10.0, metadata=check(lambda v: v > 0, "a positive number of seconds"))
    """Live sources: seconds without a frame before reconnecting."""
    start_time: str | None = field(default=None, metadata=check(lambda v: parse_time(v) is not None, TIME_FORMAT))
    """When a file's first frame was taken, e.g. 2024-05-01T07:00:00+02:00 (no offset: UTC): aligns
    ``intervals.csv`` to the clock; None: the file's ``creation_time`` if it has one. Live feeds use the clock."""
    max_reconnects: int | None = field(default=None, metadata=check(lambda v: v >= 0, "an integer >= 0"))
    """Live sources: failed attempts in a row before giving up (exit code 2); null: retry forever."""
    sample_every_s: float | None = field(
        default=None, metadata=check(lambda v: v is None or v > 0, "a positive number of seconds")
    )
    """Process one frame every this many seconds of source time and skip the rest before the model
    (a parking lot needs a frame every few seconds, not 30 a second); null: every frame."""
    workers: int | Literal["auto"] = field(
        default=1, metadata=check(lambda v: v == "auto" or 1 <= v <= 256, "an integer from 1 to 256, or auto")
    )
    """Worker processes the sources of a ``.streams`` list are spread over (round-robin), each with a
    model of its own and its share of the cores, so throughput grows with cores; 1: every source in
    this process; auto: one per two cores, at most one per source. Outputs and counts are the same."""
    shared_inference: bool | Literal["auto"] = "auto"
    """With several workers: true runs the model once, in a process of its own that batches every
    worker's frames (sent through shared memory), instead of a model per worker; detect models
    only. auto: shared where the model runs on a CUDA GPU, a model per worker on a CPU (faster there)."""


@dataclass
class ModelConfig:
    """The detector. ``weights`` is a path, a file in ``models/``, or an Ultralytics model name."""

    weights: str | None = None
    """None: ``models/yolo11n.pt`` for detect, the OpenVINO int8 ``yolo11n-seg`` model for segment."""
    task: Task | None = None
    """None: the model's own task (detect for the default weights)."""
    backend: Backend = "auto"
    """Inference engine for ``.pt`` weights (exported once and cached); auto: the fastest installed for the
    device (OpenVINO, then ONNX Runtime, on CPU; PyTorch fp16 on a GPU)."""
    precision: Precision = "auto"
    """Weights/activations for an OpenVINO export of ``.pt`` weights; int8 is quantized once (NNCF) and
    cached. auto: int8 on a CPU with int8 dot-product instructions (VNNI/AMX), else fp32."""
    calibration: str | None = None
    """Frames to calibrate int8 on (video, folder or glob; your own footage is best); None: the
    bundled ``models/calibration/`` (48 frames of traffic scenes)."""
    imgsz: int = field(default=640, metadata=check(lambda v: 32 <= v <= 8192, "an integer from 32 to 8192"))
    """Long side of the model input; the input keeps the source's aspect ratio."""
    upscale: bool = True
    """Upscale a source smaller than ``imgsz`` to it: the model was trained at 640, and small, far
    vehicles in a low-resolution camera are found at that size. Off: a 320x240 clip runs at 320x256,
    a fraction of the inference, finding fewer of them."""
    detect_every: int | Literal["auto"] = field(
        default=1, metadata=check(lambda v: v == "auto" or 1 <= v <= 30, "an integer from 1 to 30, or auto")
    )
    """Run the detector on every Nth frame; the tracker's motion model carries the boxes in between. auto:
    per camera, the smallest interval (1 to 4, at least 5 detected frames a second) that keeps it real time."""
    motion_gate: bool = False
    """Skip the detector on a frame it would run on when the frame has not changed since the last
    detected one (a parking camera, an empty road at night); the tracks hold still. A frame is still
    detected at least once a second (``pipeline/run/motion_gate.py``)."""
    conf: float = field(default=0.1, metadata=check(lambda v: 0 < v < 1, "a number between 0 and 1"))
    """Detector threshold. Low on purpose: ByteTrack keeps tracks alive with low-score boxes."""
    iou: float = field(default=0.7, metadata=check(lambda v: 0 < v <= 1, "a number between 0 and 1"))
    agnostic_nms: bool = True
    """One box per object whatever its class: a car also scored as a truck must not become a second
    track (and a second count); the track's class is its majority vote. Off: Ultralytics' per-class
    NMS (keeps e.g. a rider and their motorcycle when their boxes overlap more than ``iou``)."""
    classes: list[str] | None = None
    """Class names to keep (e.g. [car, truck]); None keeps all."""
    device: str = field(
        default="auto",
        metadata=check(
            lambda v: v in ("auto", "cpu", "cuda", "mps") or v.startswith("cuda:") or v.isdigit(),
            "auto, cpu, cuda, cuda:N or mps",
        ),
    )
    inference_threads: int = field(default=0, metadata=check(lambda v: 0 <= v <= 1024, "an integer from 0 to 1024"))
    """CPU threads OpenVINO infers on in ``vpipe run``. 0 (auto): every core or one fewer, whichever the
    run's first frames go faster with, because a core left to the other stages wins only where the
    model is cheap next to them (the summary gives both rates)."""


@dataclass
class TrackerConfig:
    """ByteTrack parameters (vpipe's own implementation, ``pipeline.tracking``). Durations are in seconds of video."""

    track_high_thresh: float = field(default=0.25, metadata=UNIT_INTERVAL)
    track_low_thresh: float = field(default=0.1, metadata=UNIT_INTERVAL)
    new_track_thresh: float = field(default=0.25, metadata=UNIT_INTERVAL)
    track_buffer_s: float = field(default=1.0, metadata=check(lambda v: v >= 0, "a number of seconds >= 0"))
    """How long a lost track is kept for re-identification; converted to frames with the source FPS."""
    match_thresh: float = field(default=0.8, metadata=UNIT_INTERVAL)
    fuse_score: bool = True
    max_speed_sizes_per_s: float = field(default=10.0, metadata=check(lambda v: v > 0, "a positive number"))
    """How far a track seen only once may have moved when it is seen again, in its own box sizes per
    second (a car at 130 km/h covers 8 of its lengths a second); the reach grows with the time between
    frames, so a new track is picked up at a low frame rate, where it no longer overlaps its first box."""
    new_track_window_s: float = field(default=0.3, metadata=check(lambda v: v >= 0, "a number of seconds >= 0"))
    """How long a track seen once waits for its second sighting before it is dropped (at least the
    next frame): one missed detection of a new vehicle does not lose it."""


@dataclass
class MqttConfig:
    """Publish events and periodic counts to an MQTT broker (QoS 1). No ``host``: off.

    Topics: ``<topic_prefix>/<camera>/events/<event type>`` and ``<topic_prefix>/<camera>/counts``.
    Credentials come from environment variables or a file (``user:password`` on one line), never
    from the config itself, and are never printed."""

    host: str | None = None
    port: int = field(default=1883, metadata=check(lambda v: 1 <= v <= 65535, "a port from 1 to 65535"))
    topic_prefix: str = field(
        default="vpipe",
        metadata=check(lambda v: v.strip() != "" and "#" not in v and "+" not in v, "a topic without wildcards"),
    )
    client_id: str | None = None
    """None: ``vpipe-<camera>``; the broker keeps this client's session (and its QoS 1 messages)."""
    username_env: str | None = field(default=None, metadata=ENV_NAME)
    password_env: str | None = field(default=None, metadata=ENV_NAME)
    credentials_file: str | None = None


@dataclass
class WebhookConfig:
    """POST every event and periodic counts as JSON to ``url``, in order, retried until delivered;
    undelivered events wait in a bounded queue on disk (``publish/webhook.queue`` in the run folder)."""

    url: str | None = field(
        default=None,
        metadata=check(lambda v: re.match(r"https?://[^/\s]+", v) is not None, "an http:// or https:// URL"),
    )
    timeout_s: float = field(default=5.0, metadata=check(lambda v: v > 0, "a positive number of seconds"))
    max_queue_mb: float = field(default=100.0, metadata=check(lambda v: v > 0, "a positive number of megabytes"))
    """Events beyond this much waiting on disk are dropped (and counted, with a warning)."""


@dataclass
class PublishConfig:
    """Live event streams; each is off unless configured (see ``docs/traffic.md``)."""

    camera: str | None = None
    """The camera's name in topics and messages; None: the source's name."""
    counts_every_s: float = field(default=10.0, metadata=check(lambda v: v > 0, "a positive number of seconds"))
    """How often the current counts are published (video time)."""
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)


@dataclass
class DrawConfig:
    """What the annotated video shows."""

    boxes: bool = True
    labels: bool = True
    masks: bool = True
    trails: bool = True
    trail_seconds: float = field(default=1.5, metadata=check(lambda v: v > 0, "a positive number of seconds"))
    trail_thickness: int = field(default=4, metadata=check(lambda v: 1 <= v <= 32, "an integer from 1 to 32"))
    mask_opacity: float = field(default=0.45, metadata=UNIT_INTERVAL)


@dataclass
class OutputConfig:
    """What is written. ``dir`` defaults to ``runs/<source stem>``."""

    dir: str | None = None
    overwrite: bool = False
    """Replace the outputs of an earlier run in ``dir`` (they are removed first); false: continue a run of the
    same source and config there, refuse another's."""
    video: bool = True
    video_width: int = field(default=960, metadata=check(lambda v: v == 0 or 16 <= v <= 8192, "0 or 16 to 8192"))
    """Largest width of ``annotated.mp4`` (and of the live views' frames): a wider source is scaled down to
    it, aspect kept, before drawing, so drawing and encoding cost a fraction at 1080p; 0: the source's size.
    Counting always runs on the source's own frames."""
    rotate: str | None = field(
        default=None, metadata=check(lambda v: parse_rotation(v) is not None, "e.g. 1h, 30m or 500MB")
    )
    """Start new output files (counts, events, video) every period or size, e.g. 1h or 500MB."""
    keep_video: int | None = field(default=None, metadata=check(lambda v: v is None or v >= 1, "null or at least 1"))
    """Annotated video segments to keep: when a new one starts (a rotation, a restart), those older than
    the newest ``keep_video`` are deleted; counts, events, intervals and the store are never deleted.
    null: keep every one."""
    interval: str = field(default="15m", metadata=check(is_duration, "a duration such as 15m, 1h or 5s"))
    """Bin length of ``intervals.csv`` (line and movement counts per bin, direction and class)."""
    store: str | None = field(
        default=None, metadata=check(lambda v: v is None or v.strip() != "", "none, a file or a postgresql:// URL")
    )
    """Where events, interval rows and parking states are also stored for ``vpipe report``: a SQLite
    file, a ``postgresql://`` URL, or ``none``; null: ``vpipe.sqlite`` in the output folder (with several
    sources, in the folder above theirs)."""
    plots: bool = True
    """Write counts.png (counts over time) and heatmap.png (where objects were)."""
    crf: int = field(default=23, metadata=check(lambda v: 0 <= v <= 51, "an integer from 0 to 51"))
    """H.264 quality: lower is better and larger."""
    preset: Preset = "superfast"
    """x264 speed preset. superfast's cheap motion search leaves the CPU to the other stages."""
    lookahead: int | None = field(
        default=10, metadata=check(lambda v: v is None or 0 <= v <= 250, "null or an integer from 0 to 250")
    )
    """Frames x264's rate control looks ahead (with its macroblock tree; 0 turns both off); null keeps
    the preset's own. superfast has none; 10 (veryfast's) spends fewer bits on a static camera's
    background at little CPU cost."""


GroupKind = Literal["vehicle", "heavy", "bicycle", "pedestrian"]
"""What a class group is to a turning-movement count: a light vehicle, a heavy vehicle (in the heavy-vehicle
share), a bicycle (counted in movements, apart from vehicles) or a pedestrian (counted on crosswalks only)."""


@dataclass
class ClassGroupConfig:
    """A class group of a turning-movement count (TMC) and the model's classes in it."""

    name: str = field(metadata=check(lambda v: v.strip() not in ("", "all"), "a non-empty name other than 'all'"))
    classes: list[str] = field(default_factory=list)
    kind: GroupKind = "vehicle"


def default_class_groups() -> list[ClassGroupConfig]:
    """FHWA's groups as far as COCO's classes tell them apart: light trucks and vans are COCO ``car``
    or ``truck`` (COCO has no class of its own for them), so they are not a group here."""
    return [
        ClassGroupConfig("cars", ["car"]),
        ClassGroupConfig("trucks", ["truck"], "heavy"),
        ClassGroupConfig("buses", ["bus"], "heavy"),
        ClassGroupConfig("motorcycles", ["motorcycle"]),
        ClassGroupConfig("bicycles", ["bicycle"], "bicycle"),
        ClassGroupConfig("pedestrians", ["person"], "pedestrian"),
    ]
