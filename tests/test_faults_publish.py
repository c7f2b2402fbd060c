"""Faults of the live event streams, through the real CLI against real servers on loopback: a webhook
behind a redirect, a webhook URL with credentials, a broker that is down from the start, a normal MQTT
run's last words, and a webhook queue that overflows. 127.0.0.2 stands in for another host."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from tests.conftest import CONFIGS, run_vpipe
from tests.test_publish import Receiver, events_of, free_port, street_config, wait_for
from tests.test_publish import broker as broker  # a fixture: the mosquitto broker of test_publish


def start_run(street: Path, config: Path, out: Path) -> subprocess.Popen[str]:
    """``vpipe run`` of the street clip in the background, not ``--quiet`` (the warnings are checked)."""
    command = [sys.executable, "-m", "pipeline", "run", str(street), "--config", str(config), "--output", str(out)]
    return subprocess.Popen(
        [*command, "--no-video"],
        cwd=CONFIGS.parent,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def as_written(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events among ``records`` as ``events.jsonl`` has them (no counts, no ``camera``)."""
    return [{k: v for k, v in r.items() if k != "camera"} for r in records if r["event"] != "counts"]


def test_a_webhook_behind_a_redirect_sends_nothing_to_its_target_and_loses_nothing(tmp_path: Path, street: Path):
    target = Receiver(0, host="127.0.0.2")  # another host: must get nothing, not even a GET
    endpoint = Receiver(free_port())
    location = f"http://127.0.0.2:{target.server_port}/elsewhere?token=redirect-secret"
    endpoint.redirect_to = location
    config = street_config(tmp_path, {"webhook": {"url": f"http://127.0.0.1:{endpoint.server_port}/events"}})
    out = tmp_path / "out"
    process = start_run(street, config, out)
    try:
        wait_for(lambda: endpoint.attempts >= 2 or process.poll() is not None, "a redirected retry")
        endpoint.redirect_to = None  # the endpoint accepts from now on
        _, stderr = process.communicate(timeout=600)
    finally:
        endpoint.shutdown()
        target.shutdown()
    assert process.returncode == 0, stderr
    assert target.requests == []
    assert [r["seq"] for r in as_written(endpoint.received)] == list(range(1, len(as_written(endpoint.received)) + 1))
    assert as_written(endpoint.received) == events_of(out)
    warnings = [line for line in stderr.splitlines() if "webhook" in line]
    assert len(warnings) == 2 and "delivering again" in warnings[1], stderr
    assert "301" in warnings[0] and location.replace("redirect-secret", "***") in warnings[0], stderr
    assert "redirect-secret" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["publish"] == {"webhook": {"delivered": len(endpoint.received), "queued": 0, "dropped": 0}}


def test_user_info_in_a_webhook_url_is_sent_as_basic_authorization_and_never_shown(tmp_path: Path, street: Path):
    password = "s3cret@pass/word"  # written in the URL with its / percent-encoded
    authorization = "Basic " + base64.b64encode(f"vpipe:{password}".encode()).decode()
    receiver = Receiver(free_port(), authorization=authorization)
    url = f"http://vpipe:s3cret@pass%2Fword@127.0.0.1:{receiver.server_port}/events"
    config = street_config(tmp_path, {"webhook": {"url": url}})
    out = tmp_path / "out"
    try:
        result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video")
    finally:
        receiver.shutdown()
    assert result.returncode == 0, result.stderr
    assert len(receiver.requests) == len(receiver.received) > 0  # none refused for want of authorization
    assert {path for _, path, _ in receiver.requests} == {"/events"}
    assert as_written(receiver.received) == events_of(out)
    assert "webhook" not in result.stderr
    outputs = b"".join(path.read_bytes() for path in out.rglob("*") if path.is_file())
    assert "s3cret" not in result.stdout + result.stderr and b"s3cret" not in outputs


def test_a_broker_down_from_the_start_is_warned_about_at_once_and_the_lost_messages_counted(
    tmp_path: Path, street: Path
):
    """The webhook beside it receives every record: what MQTT should have had acknowledged."""
    port = free_port()  # no broker there
    receiver = Receiver(free_port())
    sinks = {
        "mqtt": {"host": "127.0.0.1", "port": port},
        "webhook": {"url": f"http://127.0.0.1:{receiver.server_port}/"},
    }
    out = tmp_path / "out"
    process = start_run(street, street_config(tmp_path, sinks), out)
    seen: list[tuple[str, int]] = []  # each mqtt line, with the rows counts.csv had when it came

    def rows() -> int:
        path = out / "counts.csv"
        return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if "mqtt" in line:
                seen.append((line.strip(), rows()))

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        process.wait(timeout=600)
        reader.join(timeout=10)
    finally:
        receiver.shutdown()
    assert process.returncode == 0, seen
    sent = len(receiver.received)
    assert len(seen) == 2, seen
    (first, rows_then), (last, _) = seen
    assert f"mqtt 127.0.0.1:{port}: cannot connect" in first and rows_then < rows(), seen  # during the run
    assert f"mqtt 127.0.0.1:{port}: {sent} of {sent} messages not acknowledged" in last, seen
    summary = json.loads((out / "summary.json").read_text())
    assert summary["publish"] == {
        "mqtt": {"published": sent, "acknowledged": 0, "unacknowledged": sent},
        "webhook": {"delivered": sent, "queued": 0, "dropped": 0},
    }


def test_a_normal_mqtt_run_ends_without_a_warning_and_counts_what_was_acknowledged(
    tmp_path: Path, street: Path, broker: int
):
    received: list[dict[str, Any]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="quiet-end-subscriber")
    subscriber.on_message = lambda client, userdata, message: received.append(json.loads(message.payload))
    subscriber.connect("127.0.0.1", broker)
    subscriber.subscribe("vpipe/#", qos=1)
    subscriber.loop_start()
    out = tmp_path / "out"
    try:
        config = street_config(tmp_path, {"mqtt": {"host": "127.0.0.1", "port": broker}})
        result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video")
        time.sleep(1)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    assert result.returncode == 0, result.stderr
    assert "mqtt" not in result.stderr, result.stderr
    sent = len({json.dumps(r, sort_keys=True) for r in received})  # a repeat (QoS 1) is one message
    assert as_written(received) == events_of(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["publish"] == {"mqtt": {"published": sent, "acknowledged": sent, "unacknowledged": 0}}


def test_records_dropped_by_a_full_webhook_queue_are_counted_in_the_summary(tmp_path: Path, street: Path):
    """The endpoint never answers (connection refused) and the queue holds about 1 kB."""
    url = f"http://127.0.0.1:{free_port()}/events"
    config = street_config(tmp_path, {"webhook": {"url": url, "max_queue_mb": 0.001}, "counts_every_s": 3600})
    out = tmp_path / "out"
    result = run_vpipe("run", street, "--config", config, "--output", out, "--no-video")
    assert result.returncode == 0, result.stderr
    sent = len(events_of(out)) + 1  # with counts every hour, one counts record: the first frame's
    queued = [json.loads(line) for line in (out / "publish" / "webhook.queue").read_text().splitlines()]
    assert 0 < len(queued) < sent
    events = [r for r in queued if r["event"] != "counts"]
    assert [r["seq"] for r in events] == list(range(1, len(events) + 1))  # the newest were dropped
    dropped = sent - len(queued)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["publish"] == {"webhook": {"delivered": 0, "queued": len(queued), "dropped": dropped}}
    last = [line for line in result.stderr.splitlines() if "webhook" in line][-1]
    assert f"{len(queued)} records not delivered" in last and f"{dropped} dropped" in last, result.stderr


def test_a_webhook_url_urllib_cannot_split_is_one_line_before_anything_runs(tmp_path: Path, street: Path):
    """A raw ``#`` in the password ends the host part at ``vpipe:p``: a port that is not a number."""
    config = street_config(tmp_path, {"webhook": {"url": "http://vpipe:p#ssw0rd@127.0.0.1:9/events"}})
    result = run_vpipe("run", street, "--config", config, "--output", tmp_path / "out", "--no-video")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"vpipe: error: {config}: publish.webhook.url: ") and "percent-encode" in line, line
    assert "ssw0rd" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()
