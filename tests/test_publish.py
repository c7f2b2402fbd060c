"""Live event streams against real servers on loopback: an HTTP receiver that fails for a while, and
a real mosquitto broker; the real CLI and model on the first 150 frames of the street clip."""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.config import MqttConfig, WebhookConfig
from pipeline.io.publish.mqtt import MqttSink
from pipeline.io.publish.webhook import WebhookSink
from tests.conftest import CONFIGS, run_vpipe
from tests.servers.mjpeg import MjpegServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver(ThreadingHTTPServer):
    """Answers 503 to the first ``fail_first`` POSTs (without keeping them), then 200 and keeps them.

    While ``redirect_to`` is set it answers 301 to it instead (keeping nothing), and with ``authorization``
    set a request without that ``Authorization`` header gets 401. Every request of any method is in
    ``requests`` as (method, path, headers)."""

    def __init__(
        self, port: int, fail_first: int = 0, host: str = "127.0.0.1", authorization: str | None = None
    ) -> None:
        self.fail_first = fail_first
        self.authorization = authorization
        self.redirect_to: str | None = None
        self.attempts = 0
        self.received: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                with lock:
                    self.requests.append((handler.command, handler.path, dict(handler.headers)))
                    self.attempts += 1
                    status, location = (200 if self.attempts > self.fail_first else 503), self.redirect_to
                    if location is not None:
                        status = 301
                    elif self.authorization is not None and handler.headers["Authorization"] != self.authorization:
                        status = 401
                    if status == 200 and body:
                        self.received.append(json.loads(body))
                handler.send_response(status)
                if location is not None:
                    handler.send_header("Location", location)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            do_GET = do_POST  # a POST turned into a GET by a redirect is seen too

            def log_message(handler, *args: Any) -> None:
                pass

        super().__init__((host, port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_webhook_delivers_every_record_once_in_order_after_failures(tmp_path: Path):
    receiver = Receiver(free_port(), fail_first=3)
    sink = WebhookSink(WebhookConfig(url=f"http://127.0.0.1:{receiver.server_port}/hook"), tmp_path / "q")
    try:
        for seq in range(1, 51):
            sink.send({"seq": seq})
        sink.close(drain_s=20)
    finally:
        receiver.shutdown()
    assert receiver.attempts == 53
    assert [r["seq"] for r in receiver.received] == list(range(1, 51))
    assert len(sink.queue) == 0


def street_config(tmp_path: Path, publish: dict[str, Any], max_frames: int | None = 150) -> Path:
    settings = yaml.safe_load((CONFIGS / "street_movements.yaml").read_text())
    settings.update(publish={"counts_every_s": 2.0, **publish})
    if max_frames is not None:
        settings["source"] = {"max_frames": max_frames}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def events_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_a_run_posts_every_event_of_events_jsonl_to_an_endpoint_that_comes_up_late(tmp_path: Path, street: Path):
    port = free_port()
    config = street_config(tmp_path, {"webhook": {"url": f"http://127.0.0.1:{port}/events"}})
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(street),
            "--config",
            str(config),
            "--output",
            str(out),
            "--no-video",
        ],
        cwd=CONFIGS.parent,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events_file = out / "events.jsonl"
    while process.poll() is None and (not events_file.exists() or len(events_file.read_text().splitlines()) < 3):
        time.sleep(0.1)  # the endpoint is down (connection refused) until the run has written 3 events
    receiver = Receiver(port)
    try:
        _, stderr = process.communicate(timeout=600)
    finally:
        receiver.shutdown()
    assert process.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "webhook" in line]
    assert len(warnings) == 2 and "cannot deliver" in warnings[0] and "delivering again" in warnings[1], stderr
    events = [r for r in receiver.received if r["event"] != "counts"]
    assert [{k: v for k, v in r.items() if k != "camera"} for r in events] == events_of(out)
    assert [r["seq"] for r in events] == list(range(1, len(events) + 1))
    assert {r["camera"] for r in receiver.received} == {"street_topdown"}
    counts = [r for r in receiver.received if r["event"] == "counts"]
    assert len(counts) >= 3 and all("West->East" in r for r in counts)


@pytest.fixture
def broker(tmp_path: Path):
    port = free_port()
    process = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-p", str(port)], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_mqtt_subscriber_receives_events_jsonl_line_for_line(
    tmp_path: Path, street: Path, broker: int, monkeypatch: pytest.MonkeyPatch
):
    received: list[tuple[str, dict[str, Any]]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
    subscriber.on_message = lambda client, userdata, message: received.append(
        (message.topic, json.loads(message.payload))
    )
    subscriber.connect("127.0.0.1", broker)
    subscriber.subscribe("vpipe/#", qos=1)
    subscriber.loop_start()
    try:
        mqtt_config = {"host": "127.0.0.1", "port": broker, "username_env": "MQTT_USER", "password_env": "MQTT_PASS"}
        config = street_config(tmp_path, {"mqtt": mqtt_config, "camera": "cam1"})
        out = tmp_path / "out"
        secret = "s3cret-value-never-printed"
        monkeypatch.setenv("MQTT_USER", "vpipe")
        monkeypatch.setenv("MQTT_PASS", secret)
        result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video", "--quiet")
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout + result.stderr + (out / "summary.json").read_text()
        time.sleep(1)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    events = [(topic, r) for topic, r in received if r["event"] != "counts"]
    assert [{k: v for k, v in r.items() if k != "camera"} for _, r in events] == events_of(out)
    assert all(topic == f"vpipe/cam1/events/{r['event']}" for topic, r in events)
    assert {r["event"] for _, r in events} >= {"line_crossing", "movement"}
    counts = [r for topic, r in received if topic == "vpipe/cam1/counts"]
    assert len(counts) >= 3
    assert sorted(r["seq"] for _, r in events) == list(range(1, len(events) + 1))


def test_a_missing_credentials_variable_is_one_line_before_anything_runs(tmp_path: Path, street: Path):
    config = street_config(tmp_path, {"mqtt": {"host": "127.0.0.1", "password_env": "VPIPE_TEST_UNSET_VARIABLE"}})
    result = run_vpipe("run", street, "--config", config, "--output", tmp_path / "out", "--no-video")
    assert result.returncode == 2
    message = "publish.mqtt.password_env: environment variable VPIPE_TEST_UNSET_VARIABLE is not set"
    assert result.stderr.strip().splitlines() == [f"vpipe: error: {config}: {message}"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("publish", "key"),
    [
        ({"camera": "gate"}, "publish.camera"),
        ({"mqtt": {"host": "127.0.0.1", "client_id": "counter"}}, "publish.mqtt.client_id"),
    ],
)
def test_a_setting_naming_one_camera_is_refused_for_a_list_of_sources(
    tmp_path: Path, street: Path, publish: dict[str, Any], key: str
):
    # Two cameras under one name would mix their events and their rows in the store; two MQTT
    # clients with one id would keep disconnecting each other.
    config = street_config(tmp_path, publish)
    streams = tmp_path / "cams.streams"
    streams.write_text(f"{street}\n{street}\n")
    result = run_vpipe("run", streams, "--config", config, "--output", tmp_path / "out", "--no-video")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vpipe: error: {config}: {key}: ") and "2 sources" in lines[0]
    assert not (tmp_path / "out").exists()
    # One source may set either.
    single = run_vpipe(
        "run", street, "--config", config, "--output", tmp_path / "one", "--no-video", "--max-frames", "5"
    )
    assert single.returncode == 0, single.stderr


def test_a_run_that_ends_while_the_broker_is_away_warns_and_does_not_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="pipeline")  # whatever an earlier run in this process set
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=free_port()), "cam", (None, None))  # no broker there
    sink.send({"event": "line_crossing", "seq": 1})  # queued while not connected
    sink.close(drain_s=0.5)
    assert "messages not acknowledged by the broker at the end of the run" in caplog.text


def test_mqtt_close_waits_for_messages_queued_during_an_outage(tmp_path: Path):
    port = free_port()
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=port, client_id="queued-then-sent"), "cam", (None, None))
    sink.send({"event": "line_crossing", "seq": 1})  # the broker is not up yet: paho queues it
    broker = start_broker(port, tmp_path / "broker")
    received: list[dict[str, Any]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="queued-subscriber")
    subscriber.on_message = lambda client, userdata, message: received.append(json.loads(message.payload))
    subscriber.on_connect = lambda client, *_: client.subscribe("vpipe/#", qos=1)
    subscriber.connect("127.0.0.1", port)
    subscriber.loop_start()
    try:
        time.sleep(0.5)  # subscribed before the sink's reconnect (1 s after its failed first try)
        sink.close(drain_s=10)  # returns once the broker has acknowledged the queued message
        wait_for(lambda: len(received) == 1, "the queued message", timeout_s=10)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
        broker.terminate()
        broker.wait(timeout=10)
    assert received == [{"event": "line_crossing", "seq": 1}]


def test_a_broker_back_during_the_drain_gets_the_queue_even_after_a_long_outage(tmp_path: Path):
    """After several failed reconnects the backoff is at its cap; a 10 s drain must still see the broker back."""
    port = free_port()
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=port, client_id="long-outage"), "cam", (None, None))
    sink.send({"event": "line_crossing", "seq": 1})
    time.sleep(8)  # tries at about 1, 3, 7 s: with an 8 s cap the next would be at 15 s
    broker = start_broker(port, tmp_path / "broker")
    try:
        started = time.monotonic()
        sink.close(drain_s=5)
        assert time.monotonic() - started < 5, "the drain ran out before the sink reconnected"
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def start_broker(port: int, folder: Path) -> subprocess.Popen:
    """mosquitto on loopback with persistence, so sessions and their QoS 1 messages survive a restart.

    Started as root, mosquitto switches to its own user, which cannot write the database into this
    test's folder: ``user`` keeps it as the test's user (ignored when not root)."""
    folder.mkdir(exist_ok=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {folder}/\nautosave_interval 1\nuser {getpass.getuser()}\n"
    )
    process = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    raise RuntimeError("mosquitto did not start")


def test_a_broker_down_for_10_s_mid_run_loses_nothing(tmp_path: Path, street: Path):
    port = free_port()
    broker = start_broker(port, tmp_path / "broker")
    received: list[dict[str, Any]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outage-subscriber", clean_session=False)
    subscriber.on_message = lambda client, userdata, message: received.append(json.loads(message.payload))
    subscriber.on_connect = lambda client, *_: client.subscribe("vpipe/#", qos=1)
    subscriber.reconnect_delay_set(1, 2)
    subscriber.connect("127.0.0.1", port)
    subscriber.loop_start()
    settings = yaml.safe_load((CONFIGS / "street_movements.yaml").read_text())
    settings["publish"] = {"mqtt": {"host": "127.0.0.1", "port": port}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline", "run", str(street), "--config", str(config), "--output", str(out)]
    process = subprocess.Popen(
        [*command, "--no-video"],  # not --quiet: the warnings are checked
        cwd=CONFIGS.parent,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events_file = out / "events.jsonl"
        while process.poll() is None and (not events_file.exists() or len(events_file.read_text().splitlines()) < 5):
            time.sleep(0.1)
        broker.terminate()  # mid-run, after 5 events
        broker.wait(timeout=10)
        time.sleep(10)
        broker = start_broker(port, tmp_path / "broker")
        _, stderr = process.communicate(timeout=600)
        deadline = time.monotonic() + 10
        written = events_of(out)
        while time.monotonic() < deadline and len([r for r in received if r["event"] != "counts"]) < len(written):
            time.sleep(0.2)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
        broker.terminate()
        broker.wait(timeout=10)
    assert process.returncode == 0, stderr
    assert "mqtt 127.0.0.1" in stderr and "connected again" in stderr, stderr
    events = [r for r in received if r["event"] != "counts"]
    by_seq: dict[int, dict[str, Any]] = {}
    for record in events:  # QoS 1 is at least once: a message in flight when the broker went may come again
        assert by_seq.setdefault(record["seq"], record) == record, "two records with one seq"
    assert len(events) - len(by_seq) <= 20, "more repeats than paho keeps in flight (20)"
    ordered = [by_seq[seq] for seq in sorted(by_seq)]
    assert [{k: v for k, v in r.items() if k != "camera"} for r in ordered] == written


def wait_for(condition: Any, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_live_feed_s_health_events_reach_both_sinks_and_metrics_equal_the_summary(
    tmp_path: Path, street: Path, broker: int
):
    """An MJPEG camera on loopback goes away and comes back: the webhook and MQTT subscriber get
    ``events.jsonl`` line for line, health events included, and ``/metrics`` scraped once the camera
    is gone for good equals ``summary.json``."""
    receiver = Receiver(free_port())
    received: list[dict[str, Any]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="health-subscriber")
    subscriber.on_message = lambda client, userdata, message: received.append(json.loads(message.payload))
    subscriber.connect("127.0.0.1", broker)
    subscriber.subscribe("vpipe/#", qos=1)
    subscriber.loop_start()
    camera_port, serve_port = free_port(), free_port()
    camera = MjpegServer(street, port=camera_port).start()
    hook = {"url": f"http://127.0.0.1:{receiver.server_port}/events"}
    sinks = {"webhook": hook, "mqtt": {"host": "127.0.0.1", "port": broker}, "camera": "cam"}
    config = street_config(tmp_path, sinks, max_frames=None)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline", "run", camera.url, "--config", str(config), "--output", str(out)]
    log = (tmp_path / "stderr.txt").open("w")
    process = subprocess.Popen(
        [*command, "--no-video", "--stall-timeout", "2", "--serve", str(serve_port)],
        cwd=CONFIGS.parent,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )

    def kinds() -> list[str]:
        return [e["event"] for e in events_of(out)] if (out / "events.jsonl").exists() else []

    try:
        wait_for(lambda: "line_crossing" in kinds(), "a crossing")
        camera.stop()  # the camera goes away and comes back on the same port
        wait_for(lambda: "stream_disconnected" in kinds(), "stream_disconnected")
        camera = MjpegServer(street, port=camera_port).start()
        wait_for(lambda: "stream_reconnected" in kinds(), "stream_reconnected")
        time.sleep(3)
        camera.stop()  # gone for good: no frame, so no count, after this
        wait_for(lambda: kinds().count("stream_disconnected") == 2, "the second stream_disconnected", 30)
        time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{serve_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        time.sleep(1)
    finally:
        camera.stop()
        if process.poll() is None:
            process.kill()
        log.close()
        subscriber.loop_stop()
        subscriber.disconnect()
        receiver.shutdown()
    assert process.returncode == 0, (tmp_path / "stderr.txt").read_text()
    written = events_of(out)
    assert [e["event"] for e in written if e["event"].startswith("stream_")] == [
        "stream_disconnected",
        "stream_reconnected",
        "stream_disconnected",
    ]
    for records in (receiver.received, received):
        events = [r for r in records if r["event"] != "counts"]
        assert [{k: v for k, v in r.items() if k != "camera"} for r in events] == written
        assert [r["seq"] for r in events] == list(range(1, len(events) + 1))

    summary = json.loads((out / "summary.json").read_text())
    samples = {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "camera"))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    crossings = {key: value for key, value in samples.items() if key[0] == "vpipe_line_crossings_total"}
    assert crossings == {
        ("vpipe_line_crossings_total", (("class_name", c), ("direction", d), ("line", line))): float(n)
        for line, entry in summary["lines"].items()
        for d in ("in", "out")
        for c, n in entry[d].items()
    }
    movements = {key: value for key, value in samples.items() if key[0] == "vpipe_movements_total"}
    assert movements == {
        ("vpipe_movements_total", (("class_name", c), ("movement", name))): float(n)
        for name, entry in summary["movements"]["counts"].items()
        for c, n in entry["by_class"].items()
    }
    assert samples[("vpipe_frames_processed_total", ())] == summary["frames"]
    dropped = [
        s.value for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == "vpipe_frames_dropped"
    ]
    assert dropped == [summary["frames_dropped"]]
    assert samples[("vpipe_stream_events_total", (("event", "disconnected"),))] == 2
    assert samples[("vpipe_stream_events_total", (("event", "reconnected"),))] == summary["reconnects"] == 1
