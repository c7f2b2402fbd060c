"""A lot's free bays as retained MQTT state (issue 24): the real CLI and model on the 12 parking-lot
snapshots, a real mosquitto broker; a subscriber that connects after the run still gets the state."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

from pipeline.config import Config, MqttConfig, PublishConfig
from pipeline.io.publish.publisher import Publisher
from tests.conftest import CONFIGS, SAMPLES, run_vpipe
from tests.test_publish import broker, wait_for  # noqa: F401 (broker: the fixture)

TOPIC = "vpipe/lot/parking/free"


def subscribe(port: int, client_id: str, received: list[tuple[dict[str, Any], bool]]) -> mqtt.Client:
    """A subscriber to :data:`TOPIC` that appends (payload, retained) per message."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_message = lambda c, userdata, message: received.append((json.loads(message.payload), message.retain))
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_free_bays_are_retained_and_reach_a_subscriber_that_comes_after(tmp_path: Path, broker: int):  # noqa: F811
    settings = yaml.safe_load((CONFIGS / "parking.yaml").read_text())
    settings["parking"]["slots_file"] = str(CONFIGS / settings["parking"]["slots_file"])
    settings["publish"] = {"camera": "lot", "mqtt": {"host": "127.0.0.1", "port": broker}}
    config = tmp_path / "parking.yaml"
    config.write_text(yaml.safe_dump(settings))
    live: list[tuple[dict[str, Any], bool]] = []
    watcher = subscribe(broker, "watching-all-along", live)
    try:
        time.sleep(0.5)
        out = tmp_path / "out"
        result = run_vpipe("run", SAMPLES / "pklot_pucpr", "--config", config, "--output", out, "--no-video", "--quiet")
        assert result.returncode == 0, result.stderr
        time.sleep(1)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    rows = list(csv.DictReader((out / "counts.csv").open()))
    changes = [(int(row["slots_free"]), int(row["slots_occupied"])) for row in rows]
    changes = [state for index, state in enumerate(changes) if index == 0 or state != changes[index - 1]]
    assert [(message["free"], message["occupied"]) for message, _ in live] == changes  # once per change
    assert all(message["slots"] == 97 and message["camera"] == "lot" for message, _ in live)

    late: list[tuple[dict[str, Any], bool]] = []
    newcomer = subscribe(broker, "subscribing-after-the-run", late)
    try:
        wait_for(lambda: late, "the retained state", timeout_s=10)
    finally:
        newcomer.loop_stop()
        newcomer.disconnect()
    (state, retained), *_ = late
    summary = json.loads((out / "summary.json").read_text())
    assert retained and state["free"] == summary["parking"]["free_at_end"]
    assert state == live[-1][0]


def test_free_bays_are_published_only_when_they_change(tmp_path: Path, broker: int):  # noqa: F811
    received: list[tuple[dict[str, Any], bool]] = []
    subscriber = subscribe(broker, "watching-the-publisher", received)
    mqtt_config = MqttConfig(host="127.0.0.1", port=broker, client_id="publisher-under-test")
    publisher = Publisher(Config(publish=PublishConfig(camera="lot", mqtt=mqtt_config)), "source", tmp_path)
    try:
        time.sleep(0.5)
        for index, free in enumerate([5, 5, 4, 4, 4, 5, 5]):
            publisher.counts({"frame_index": index, "slots_occupied": 8 - free, "slots_free": free}, index * 0.5)
        publisher.close()
        wait_for(lambda: len(received) >= 3, "three states", timeout_s=10)
        time.sleep(0.5)  # nothing more comes
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    assert [(message["free"], message["occupied"], message["timestamp_s"]) for message, _ in received] == [
        (5, 3, 0.0),
        (4, 4, 1.0),
        (5, 3, 2.5),
    ]
