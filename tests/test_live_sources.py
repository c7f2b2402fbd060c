"""Live sources: reconnect with backoff, events, credential masking, and the stream list file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import SourceError
from pipeline.io.sources.files import LiveSource, read_stream_list
from pipeline.io.urls import is_stream_url, mask_credentials, stream_name


class FakeCamera(LiveSource):
    """A camera that fails to connect ``failures`` times, then gives ``frames_per_connection`` frames
    per connection (its stream clock restarting at 0 each time), ``connections`` times."""

    def __init__(self, failures: int, frames_per_connection: int, connections: int = 1, **kwargs: object) -> None:
        self.name = "fake"
        self.plan = ["fail"] * failures + ["ok"] * connections
        self.frames_per_connection = frames_per_connection
        super().__init__("rtsp://admin:hunter2@cam.local/1", backoff_s=0.01, backoff_max_s=0.04, **kwargs)

    def _connect(self) -> tuple[Iterator[tuple[np.ndarray, float | None]], tuple[np.ndarray, float | None], Fraction]:
        outcome = self.plan.pop(0) if self.plan else "fail"
        if outcome == "fail":
            raise SourceError("connection refused by rtsp://admin:hunter2@cam.local/1")

        def frames() -> Iterator[tuple[np.ndarray, float | None]]:
            for index in range(1, self.frames_per_connection):
                yield np.full((4, 6, 3), index, np.uint8), index / 10

        return frames(), (np.zeros((4, 6, 3), np.uint8), 0.0), Fraction(10)


def test_connects_after_failures_with_capped_exponential_backoff():
    camera = FakeCamera(failures=4, frames_per_connection=3)
    attempts = [e for e in camera.drain_events() if e["event"] == "reconnect_attempt"]
    assert [e["wait_s"] for e in attempts] == [0.01, 0.02, 0.04, 0.04]
    assert all("hunter2" not in str(e) and "admin:***@" in e["source"] for e in attempts)
    assert (camera.width, camera.height) == (6, 4)


def test_gives_up_after_max_reconnects_with_a_masked_one_line_error():
    with pytest.raises(SourceError) as error:
        FakeCamera(failures=10, frames_per_connection=3, max_reconnects=2)
    message = str(error.value)
    assert "cannot connect after 3 attempts" in message
    assert "hunter2" not in message and "rtsp://admin:***@cam.local/1" in message
    assert "\n" not in message


def test_reconnects_after_the_stream_ends_and_keeps_frame_numbers_and_time_running():
    camera = FakeCamera(failures=0, frames_per_connection=3, connections=2, max_reconnects=0)
    frames = []
    with pytest.raises(SourceError, match="lost and not back"):
        for frame in camera:
            frames.append(frame)
            time.sleep(0.01)
    assert [f.frame_index for f in frames] == list(range(6))
    timestamps = [f.timestamp_s for f in frames]
    assert timestamps == sorted(timestamps)
    # The second connection's stream clock restarts at 0, but its frames come after the first's.
    assert timestamps[3] >= timestamps[2]
    events = [e["event"] for e in camera.drain_events()]
    assert events[:2] == ["stream_disconnected", "stream_reconnected"]


def test_timestamps_count_from_when_the_camera_connected_not_from_when_reading_began():
    """The first connection is opened before the model loads; reading starts later. The frames
    buffered meanwhile keep their stream times from the connection on, so a later outage is not
    shortened in the timestamps by the start-up delay."""
    camera = FakeCamera(failures=0, frames_per_connection=3, connections=2, max_reconnects=0)
    time.sleep(0.5)  # loading the model
    frames = []
    with pytest.raises(SourceError, match="lost and not back"):
        frames.extend(camera)
    first_connection = [f.timestamp_s for f in frames[:3]]
    assert first_connection[0] < 0.2
    assert first_connection == pytest.approx([first_connection[0] + t for t in (0.0, 0.1, 0.2)])
    assert frames[3].timestamp_s >= 0.5  # the second connection: the wall clock when it came


class JitteryCamera(FakeCamera):
    """One connection whose stream clock follows ``stream_times``, steps back included."""

    def __init__(self, stream_times: list[float]) -> None:
        self.stream_times = stream_times
        super().__init__(failures=0, frames_per_connection=len(stream_times), max_reconnects=0)

    def _connect(self) -> tuple[Iterator[tuple[np.ndarray, float | None]], tuple[np.ndarray, float | None], Fraction]:
        if not self.plan:
            raise SourceError("connection refused")
        self.plan.pop(0)
        image = np.zeros((4, 6, 3), np.uint8)
        return ((image, t) for t in self.stream_times[1:]), (image, self.stream_times[0]), Fraction(25)


def test_a_stream_clock_that_steps_back_never_takes_timestamps_back():
    """RTP timestamps rounded to the clock rate can step back by a fraction of a millisecond; the
    frames' timestamps must still never decrease, and otherwise follow the stream's clock."""
    stream_times = [10.0, 10.04, 10.0801, 10.08, 10.12, 10.1601, 10.16, 10.2]  # two steps back
    camera = JitteryCamera(stream_times)
    frames = []
    with pytest.raises(SourceError, match="lost and not back"):
        frames.extend(camera)
    timestamps = np.array([frame.timestamp_s for frame in frames])
    assert len(timestamps) == len(stream_times)
    assert (np.diff(timestamps) >= 0).all(), np.diff(timestamps)
    expected = np.maximum.accumulate(np.array(stream_times)) - stream_times[0]
    assert timestamps - timestamps[0] == pytest.approx(expected, abs=1e-9)


def test_max_frames_stops_a_live_source():
    camera = FakeCamera(failures=0, frames_per_connection=100, max_frames=5)
    assert len(list(camera)) == 5


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/s1", "rtsp://admin:***@10.0.0.5:554/s1"),
        ("http://u:p%40ss@cam/video.mjpg", "http://u:***@cam/video.mjpg"),
        ("https://cam/live.m3u8?token=abc123&x=1", "https://cam/live.m3u8?token=***&x=1"),
        ("error at rtmp://a:b@h/app and rtsp://c:d@h2/x", "error at rtmp://a:***@h/app and rtsp://c:***@h2/x"),
        ("rtsp://cam/1", "rtsp://cam/1"),
    ],
)
def test_credentials_are_masked(url: str, masked: str):
    assert mask_credentials(url) == masked


def test_stream_names_are_safe_and_secret_free():
    assert (
        stream_name("rtsp://admin:hunter2@10.0.0.5:554/Streaming/Channels/101") == "10.0.0.5_554_Streaming_Channels_101"
    )
    assert is_stream_url("rtmp://x/y") and is_stream_url("https://x/y.m3u8") and not is_stream_url("/tmp/a.mp4")


def test_stream_list_file(tmp_path: Path):
    path = tmp_path / "cams.streams"
    path.write_text("# north gate\nrtsp://cam1/live\n\n  http://cam2/video.mjpg  \n")
    assert read_stream_list(path) == ["rtsp://cam1/live", "http://cam2/video.mjpg"]
    (tmp_path / "empty.streams").write_text("# nothing\n")
    with pytest.raises(SourceError, match="the stream list is empty"):
        read_stream_list(tmp_path / "empty.streams")
