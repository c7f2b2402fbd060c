"""Sources and sinks on real files: timestamps, image folders, H.264 output, flushed CSV/JSONL."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.errors import SourceError
from pipeline.io.outputs.sinks import CountsCsvSink, H264VideoSink, JsonlSink, write_json_atomic
from pipeline.io.sources.files import ImageFolderSource, VideoFileSource, open_source
from tests.conftest import REPO


def test_video_timestamps_come_from_the_container(street: Path):
    # street_topdown.mp4 runs at 2997/125 (23.976) fps: frame_index / 30 would be wrong.
    with av.open(str(street)) as container:
        stream = container.streams.video[0]
        expected = [float(f.pts * stream.time_base) for _, f in zip(range(50), container.decode(stream), strict=False)]
    source = open_source(str(street), max_frames=50)
    frames = list(source)
    assert [f.frame_index for f in frames] == list(range(50))
    assert [f.timestamp_s for f in frames] == pytest.approx(expected)
    assert frames[24].timestamp_s == pytest.approx(24 * 125 / 2997)
    assert source.fps == Fraction(2997, 125)
    assert (source.width, source.height, source.frame_count) == (640, 360, 50)


def test_image_folder_is_read_in_name_order(tmp_path: Path):
    for index in (2, 0, 1, 10):
        cv2.imwrite(str(tmp_path / f"img_{index:03d}.png"), np.full((40, 60, 3), index * 20, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path), fps=10)
    assert isinstance(source, ImageFolderSource)
    frames = list(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 20, 40, 200]
    assert [f.timestamp_s for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert list(open_source(str(tmp_path / "img_00[01].png")))[1].image[0, 0, 0] == 20  # a glob


def test_image_folder_skips_and_counts_unreadable_or_mis_sized_images(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"not an image")  # the first readable image sets the size
    cv2.imwrite(str(tmp_path / "b.png"), np.full((40, 60, 3), 1, np.uint8))
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((50, 60, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "d.png"), np.full((40, 60, 3), 3, np.uint8))
    source = open_source(str(tmp_path), fps=10)
    frames = list(source)
    assert [(f.frame_index, int(f.image[0, 0, 0])) for f in frames] == [(1, 1), (3, 3)]
    assert frames[1].timestamp_s == pytest.approx(0.3)  # a skipped image leaves its time unused
    assert (source.width, source.height, source.frames_skipped) == (60, 40, 2)


def test_image_folder_with_no_readable_image_fails_clearly(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"not an image")
    with pytest.raises(SourceError, match="none of the 1 images can be read"):
        open_source(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file or folder"), (b"this is not a video" * 100, "cannot open video")],
)
def test_missing_or_corrupt_video_raises_one_line(tmp_path: Path, content: bytes | None, message: str):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as error:
        open_source(str(path))
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_empty_folder_raises(tmp_path: Path):
    with pytest.raises(SourceError, match="no images found"):
        open_source(str(tmp_path))


def test_h264_sink_writes_a_browser_playable_mp4(tmp_path: Path):
    path = tmp_path / "out.mp4"
    fps = Fraction(30000, 1001)
    rng = np.random.default_rng(0)
    with H264VideoSink(path, 320, 240, fps) as sink:
        for _ in range(45):
            sink.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (320, 240)
        assert stream.average_rate == fps
        assert sum(1 for _ in container.decode(stream)) == 45


def test_h264_sink_shows_each_frame_at_its_time(tmp_path: Path):
    path = tmp_path / "vfr.mp4"
    times_s = [5.0, 5.1, 5.35, 5.4, 6.0]  # the first frame starts the video
    with H264VideoSink(path, 64, 48, Fraction(25)) as sink:
        for index, time_s in enumerate(times_s):
            sink.write(np.full((48, 64, 3), index * 40, np.uint8), time_s)
    with av.open(str(path)) as container:
        shown = [float(frame.pts * frame.time_base) for frame in container.decode(video=0)]
    assert shown == pytest.approx([0.0, 0.1, 0.35, 0.4, 1.0], abs=1e-4)


def x264_options(path: Path) -> dict[str, str]:
    """The settings x264 wrote into the stream (its SEI text: ``options: key=value ...``)."""
    text = path.read_bytes().split(b"x264 - core", 1)[1].split(b"\x00", 1)[0].decode()
    return dict(option.split("=", 1) for option in text.split("options: ", 1)[1].split())


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"me": "dia", "subme": "1", "rc_lookahead": "10", "mbtree": "1", "crf": "23.0"}),  # the default
        ({"lookahead": 0}, {"me": "dia", "mbtree": "0"}),  # x264 omits rc_lookahead then
        ({"preset": "veryfast", "lookahead": None}, {"me": "hex", "subme": "2", "rc_lookahead": "10", "mbtree": "1"}),
        ({"preset": "medium", "lookahead": None, "crf": 30}, {"subme": "7", "rc_lookahead": "40", "crf": "30.0"}),
    ],
)
def test_h264_sink_encodes_with_the_configured_x264_settings(
    tmp_path: Path, settings: dict[str, object], expected: dict[str, str]
):
    path = tmp_path / "out.mp4"
    output = load_config(None, {"output": settings}).output
    with H264VideoSink.for_output(path, 64, 48, Fraction(25), output) as sink:
        for index in range(5):
            sink.write(np.full((48, 64, 3), index * 40, np.uint8))
    options = x264_options(path)
    assert {key: options[key] for key in expected} == expected


def test_h264_sink_pads_odd_sizes_and_rejects_wrong_frames(tmp_path: Path):
    path = tmp_path / "odd.mp4"
    with H264VideoSink(path, 321, 241, Fraction(25)) as sink:
        sink.write(np.zeros((241, 321, 3), np.uint8))
        with pytest.raises(ValueError, match="video is 321x241"):
            sink.write(np.zeros((240, 320, 3), np.uint8))
    with av.open(str(path)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (322, 242)


def test_video_written_so_far_plays_before_close(tmp_path: Path):
    """The MP4 is fragmented, so a killed process leaves a playable file."""
    path = tmp_path / "partial.mp4"
    sink = H264VideoSink(path, 160, 120, Fraction(30))
    for index in range(130):  # > two 2-second fragments
        sink.write(np.full((120, 160, 3), index % 255, np.uint8))
    with av.open(str(path)) as container:  # read while the writer is still open
        assert sum(1 for _ in container.decode(video=0)) >= 60
    sink.close()
    sink.close()  # idempotent


def test_counts_csv_and_events_are_readable_while_being_written(tmp_path: Path):
    columns = ["frame_index", "timestamp_s", "tracks_active", "main_in", "main_out", "zone_count"]
    csv_sink = CountsCsvSink(tmp_path / "counts.csv", columns)
    events = JsonlSink(tmp_path / "events.jsonl")
    csv_sink.write(dict(zip(columns, [0, 0.0, 2, 0, 0, 1], strict=True)))
    csv_sink.write(dict(zip(columns, [1, 0.0333, 3, 1, 0, 2], strict=True)))
    events.write([{"event": "line_crossing", "frame_index": 1}])
    rows = list(csv.DictReader((tmp_path / "counts.csv").open()))
    assert rows[-1] == {
        "frame_index": "1",
        "timestamp_s": "0.0333",
        "tracks_active": "3",
        "main_in": "1",
        "main_out": "0",
        "zone_count": "2",
    }
    assert json.loads((tmp_path / "events.jsonl").read_text().splitlines()[0])["frame_index"] == 1
    csv_sink.close()
    events.close()


def test_summary_is_replaced_atomically_so_a_reader_never_sees_it_change_under_it(tmp_path: Path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"frames": 3})
    with path.open() as reader:  # opened before the update, read after it
        write_json_atomic(path, {"frames": 4, "status": "completed"})
        assert json.loads(reader.read()) == {"frames": 3}, "the file was rewritten in place"
    assert json.loads(path.read_text()) == {"frames": 4, "status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_summary_write_that_fails_midway_leaves_the_previous_summary_whole(tmp_path: Path):
    # A child process whose files may not grow past 200 bytes (as on a full disk): the new summary
    # cannot be written whole, and the old one must survive.
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"frames": 3})
    script = (
        "import resource, signal, sys; from pipeline.io.outputs.sinks import write_json_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))\n"
        "try:\n    write_json_atomic(sys.argv[1], {'frames': 4, 'padding': 'x' * 1000})\n"
        "except OSError:\n    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr  # the write did fail
    assert json.loads(path.read_text()) == {"frames": 3}


def test_a_truncated_video_yields_the_frames_before_the_cut(tmp_path: Path, highway: Path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(highway.read_bytes()[: highway.stat().st_size // 2])
    frames = list(VideoFileSource(truncated))
    assert 0 < len(frames) < 335
    assert [f.frame_index for f in frames] == list(range(len(frames)))
