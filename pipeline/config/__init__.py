"""Run configuration: YAML sections mapped onto dataclasses, with defaults and strict validation.

Every key is optional. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`
naming the file and the key, so a typo never silently falls back to a default.

``sections`` (source, model, tracker, streams, drawing, outputs) and ``geometry`` (lines, zones,
slots, approaches, speed calibration) hold the sections, ``run`` the whole :class:`Config`,
``loading`` the YAML-to-dataclass validation, ``fields`` the checks they share.

Example:
    >>> config = load_config(None, {"lines": [{"name": "a", "start": [0, 10], "end": [100, 10]}]})
    >>> config.lines[0].end
    (100.0, 10.0)
"""

from pipeline.config.fields import parse_rotation, parse_time
from pipeline.config.geometry import (
    ApproachConfig,
    CrosswalkConfig,
    LaneConfig,
    LineConfig,
    MovementsConfig,
    ParkingConfig,
    SlotConfig,
    SpeedConfig,
    ZoneConfig,
)
from pipeline.config.loading import load_config, load_slots
from pipeline.config.run import Config
from pipeline.config.sections import (
    ClassGroupConfig,
    DrawConfig,
    ModelConfig,
    MqttConfig,
    OutputConfig,
    PublishConfig,
    SourceConfig,
    TrackerConfig,
    WebhookConfig,
)

__all__ = [
    "ApproachConfig",
    "ClassGroupConfig",
    "Config",
    "CrosswalkConfig",
    "DrawConfig",
    "LaneConfig",
    "LineConfig",
    "ModelConfig",
    "MovementsConfig",
    "MqttConfig",
    "OutputConfig",
    "ParkingConfig",
    "PublishConfig",
    "SlotConfig",
    "SourceConfig",
    "SpeedConfig",
    "TrackerConfig",
    "WebhookConfig",
    "ZoneConfig",
    "load_config",
    "load_slots",
    "parse_rotation",
    "parse_time",
]
