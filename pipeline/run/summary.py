"""``summary.json`` as one type: :class:`RunSummary`, what the run of one source, or of one batch
slice, says of itself.

:class:`~pipeline.run.source_run.SourceRun` writes it; the CLI's table and ``vpipe batch`` (workers,
merging, reports) read its attributes. :meth:`RunSummary.to_json` is the file's layout, the one place
that names its keys, and :meth:`RunSummary.from_json` reads a file (or a batch manifest's copy) back.
The open-ended sections (``lines``, ``zones``, ``movements``, ``parking``, ``intervals``,
``publish``) stay dicts, shaped by what writes them (see ``docs/outputs.md``).

Example:
    >>> model = ModelInfo("yolo11n.pt", "detect", "cpu", 640, "torch", "fp32", [384, 640], None)
    >>> summary = RunSummary("clip.mp4", 30.0, 960, 540, model, detect_every=1, output_dir="runs/clip")
    >>> list(summary.to_json())[:4], summary.to_json()["status"]
    (['source', 'frames', 'fps', 'width'], 'running')
    >>> RunSummary.from_json(summary.to_json()) == summary
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.analytics import Counts


@dataclass
class ModelInfo:
    """What ran (:meth:`pipeline.models.Detector.describe`): the weights, task, device, input size,
    backend and precision; the inference threads and, where a trial chose them, its frames per second;
    where each step of a frame ran."""

    weights: str
    task: str
    device: str
    imgsz: int
    backend: str
    precision: str
    input_size: list[int]
    inference_threads: int | None
    inference_precision: str | None = None
    """The precision OpenVINO runs the float layers in (None: another backend; not in the file then)."""
    threads_trial_fps: dict[str, float] | None = None
    """Frames per second per thread count tried, where a trial chose ``inference_threads``."""
    stages: dict[str, str] | None = None
    """Where each step of a frame ran (:meth:`~pipeline.models.Detector.stages`); None in a summary
    written before summaries had it."""
    shared_inference: dict[str, Any] | None = None
    """Where the model ran when a ``--workers`` run shared it (:mod:`pipeline.run.inference_stage`):
    the process and how many workers it served; None: in this run's own process."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        """From a summary (or :meth:`~pipeline.models.Detector.describe`)."""
        return cls(
            data["model"],
            data["task"],
            data["device"],
            data["imgsz"],
            data["backend"],
            data["precision"],
            data["input_size"],
            data.get("inference_threads"),
            data.get("inference_precision"),
            data.get("inference_threads_trial_fps"),
            data.get("stages"),
            data.get("shared_inference"),
        )

    def head_json(self) -> dict[str, Any]:
        """Every field but the trial's rates, as the summary's head has them (the rates come later)."""
        head = {
            "model": self.weights,
            "task": self.task,
            "device": self.device,
            "imgsz": self.imgsz,
            "backend": self.backend,
            "precision": self.precision,
            "input_size": self.input_size,
            "inference_threads": self.inference_threads,
        }
        if self.inference_precision is not None:
            head["inference_precision"] = self.inference_precision
        if self.stages is not None:
            head["stages"] = self.stages
        if self.shared_inference is not None:
            head["shared_inference"] = self.shared_inference
        return head


@dataclass
class SlicePart:
    """A batch slice's place in its video: it counts frames ``[start_frame, end_frame)``, from
    ``start_s`` to ``end_s`` in the video's time; the ``warmup_frames`` before them were tracked, not counted.

    Example:
        >>> part = SlicePart("part-0001", start_frame=126)
        >>> part.count(126, 4.20420, 4.23757); part.count(127, 4.23757, 4.27094)
        >>> (part.end_frame, part.start_s, part.end_s)
        (128, 4.2042, 4.2709)
    """

    name: str
    start_frame: int
    end_frame: int | None = None
    """One past the last frame counted (``start_frame`` before the first)."""
    warmup_frames: int = 0
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        if self.end_frame is None:
            self.end_frame = self.start_frame

    def count(self, frame_index: int, timestamp_s: float, end_s: float) -> None:
        """One more frame counted, at ``timestamp_s``, shown until ``end_s``."""
        if self.start_s is None:
            self.start_s = round(timestamp_s, 4)
        self.end_frame = frame_index + 1
        self.end_s = round(end_s, 4)


@dataclass
class RunSummary:
    """A run's ``summary.json``: one source's, or one batch slice's (:attr:`part` set).

    The counting fields (:attr:`counts`, :attr:`intervals`, :attr:`tracks_total`, memory) are in
    the summaries written while the run counts and at its end (:attr:`counted`), not in the one
    written at its start (nor when it failed there).
    A slice's file has its own layout: its place in the video after ``source``, and no tracker,
    source losses, memory or publishing.
    """

    source: str
    fps: float
    width: int
    height: int
    model: ModelInfo
    detect_every: int | str
    """The detection interval, or ``auto`` (then :attr:`detect_every_auto` says what was chosen)."""
    output_dir: str
    frames: int = 0
    """Frames processed (a slice's: counted, the warm-up not included)."""
    duration_s: float = 0.0
    """Video time of those frames."""
    processing_fps: float = 0.0
    status: str = "running"
    """``running``, ``completed``, ``truncated``, ``interrupted`` or ``failed``."""
    error: str | None = None
    part: SlicePart | None = None
    tracker: dict[str, Any] = field(default_factory=dict)
    """ByteTrack's effective settings at this source's rate."""
    frames_dropped: int = 0
    frames_skipped: int = 0
    reconnects: int = 0
    counted: bool = False
    """Whether the counting fields are in: False for the summary written at the start."""
    counts: Counts = field(default_factory=lambda: Counts({}, {}))
    intervals: dict[str, Any] = field(default_factory=dict)
    tracks_total: int = 0
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    publish: dict[str, Any] | None = None
    """Per event stream (MQTT, webhook): what it sent and lost; None without one."""
    run_id: str = ""
    """The id of the process that wrote the file (a new one per process start)."""
    time_utc: str | None = None
    """When the file was written (ISO 8601 UTC)."""
    identity: str = ""
    """What the run is of: its source and settings (see :func:`pipeline.io.outputs.run_folder.run_identity`)."""
    start_utc: str | None = None
    """The wall-clock time of ``timestamp_s`` 0 (a live feed's first frame, a file's start time), if known."""
    detect_every_auto: dict[str, Any] | None = None
    """With ``detect_every: auto``: the interval now, the largest allowed, the frames detected and the
    latest changes (frame index, interval)."""
    motion_gate: dict[str, int] | None = None
    """With ``model.motion_gate``: the frames detected and those skipped as unchanged (counted frames)."""
    segments: list[dict[str, Any]] = field(default_factory=list)
    """One entry per process that wrote the run, oldest first: its ``run_id``, ``started_utc``, the
    number of its first files (``first_file``: ``counts.0002.csv`` is 2) and how it ended (``status``)."""

    def add_frame(self, frame_index: int, timestamp_s: float, end_s: float) -> None:
        """One more frame counted, at ``timestamp_s`` and shown until ``end_s`` (a whole run's time
        starts at 0 on its first frame; a slice's is the video's)."""
        self.frames += 1
        start_s = 0.0
        if self.part is not None:
            self.part.count(frame_index, timestamp_s, end_s)
            start_s = self.part.start_s or 0.0
        self.duration_s = round(end_s - start_s, 4)

    def to_json(self) -> dict[str, Any]:
        """The contents of ``summary.json``, keys in the file's order."""
        part = self.part
        data: dict[str, Any] = {"source": self.source}
        if part is not None:
            data["part"] = part.name
        data["frames"] = self.frames
        if part is not None:
            data.update(warmup_frames=part.warmup_frames, start_frame=part.start_frame, end_frame=part.end_frame)
            data.update(start_s=part.start_s, end_s=part.end_s)
        data.update(fps=self.fps, width=self.width, height=self.height, duration_s=self.duration_s)
        data.update(processing_fps=self.processing_fps, **self.model.head_json(), detect_every=self.detect_every)
        data.update({"detect_every_auto": self.detect_every_auto} if self.detect_every_auto is not None else {})
        data.update({"motion_gate": self.motion_gate} if self.motion_gate is not None else {})
        data.update(output_dir=self.output_dir, status=self.status, run_id=self.run_id, time_utc=self.time_utc)
        if part is not None:
            data.update(start_utc=self.start_utc)  # a slice's timestamps are the video's: its time 0 too
        else:
            data.update(identity=self.identity, start_utc=self.start_utc, segments=self.segments)
            data.update(tracker=self.tracker, frames_dropped=self.frames_dropped)
            data.update(frames_skipped=self.frames_skipped, reconnects=self.reconnects)
        if self.model.threads_trial_fps:
            data["inference_threads_trial_fps"] = self.model.threads_trial_fps
        if self.counted:
            if part is None:
                data.update(peak_rss_mb=self.peak_rss_mb, peak_gpu_mb=self.peak_gpu_mb)
            data.update(self.counts.to_json())
            if part is None:
                data.update(intervals=self.intervals, tracks_total=self.tracks_total)
            else:
                data.update(tracks_total=self.tracks_total, intervals=self.intervals)
        if self.error:
            data["error"] = self.error
        if self.publish is not None:
            data["publish"] = self.publish
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        """Read :meth:`to_json`'s output back (a ``summary.json``, a batch manifest's copy)."""
        part = None
        if "part" in data:
            part = SlicePart(data["part"], data["start_frame"], data["end_frame"], data["warmup_frames"])
            part.start_s, part.end_s = data["start_s"], data["end_s"]
        return cls(
            data["source"],
            data["fps"],
            data["width"],
            data["height"],
            ModelInfo.from_json(data),
            data["detect_every"],
            data["output_dir"],
            frames=data["frames"],
            duration_s=data["duration_s"],
            processing_fps=data["processing_fps"],
            status=data["status"],
            error=data.get("error"),
            part=part,
            tracker=data.get("tracker", {}),
            frames_dropped=data.get("frames_dropped", 0),
            frames_skipped=data.get("frames_skipped", 0),
            reconnects=data.get("reconnects", 0),
            counted="lines" in data,
            counts=Counts.from_json(data) if "lines" in data else Counts({}, {}),
            intervals=data.get("intervals", {}),
            tracks_total=data.get("tracks_total", 0),
            peak_rss_mb=data.get("peak_rss_mb"),
            peak_gpu_mb=data.get("peak_gpu_mb"),
            publish=data.get("publish"),
            run_id=data.get("run_id", ""),
            time_utc=data.get("time_utc"),
            identity=data.get("identity", ""),
            start_utc=data.get("start_utc"),
            segments=data.get("segments", []),
            detect_every_auto=data.get("detect_every_auto"),
            motion_gate=data.get("motion_gate"),
        )
