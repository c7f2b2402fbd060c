"""Config loading: defaults, overrides, and one clear error per kind of mistake."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml

from pipeline.config import Config, LineConfig, ModelConfig, OutputConfig, load_config
from pipeline.config.sections import default_class_groups
from pipeline.errors import ConfigError
from tests.conftest import CONFIGS, run_vpipe
from tests.test_faults import one_line_error


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_configs_load(path: Path):
    assert isinstance(load_config(path), Config)


def test_example_config_documents_every_key_with_its_default():
    """configs/example.yaml is the reference: loading it must equal the built-in defaults."""
    example = load_config(CONFIGS / "example.yaml")
    example.origin = "<defaults>"
    assert example == load_config(None)


def _documented_keys(cls: type, document: dict, where: str) -> list[str]:
    """Every key of dataclass ``cls`` missing from ``document`` or there but unknown, by dotted name
    (sections are walked down; lists of items are documented by commented examples)."""
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    hints = get_type_hints(cls)
    found = [f"missing {where}{name}" for name in known if name not in document]
    found += [f"unknown {where}{name}" for name in document if name not in known]
    for name in known:
        if is_dataclass(hints[name]) and isinstance(document.get(name), dict):
            found += _documented_keys(hints[name], document[name], f"{where}{name}.")
    return found


def test_example_config_lists_every_key():
    """configs/example.yaml claims to list every key: each section's keys are the config's own."""
    document = yaml.safe_load((CONFIGS / "example.yaml").read_text())
    assert _documented_keys(Config, document, "") == []


def test_a_config_with_only_lines_is_valid(tmp_path: Path):
    path = tmp_path / "lines.yaml"
    path.write_text("lines:\n  - {name: a, start: [0, 10], end: [100, 10]}\n")
    config = load_config(path)
    assert config.lines[0].start == (0.0, 10.0)
    assert config.model.imgsz == 640 and config.tracker.track_buffer_s == 1.0 and config.draw.trail_seconds == 1.5


def test_overrides_replace_file_values(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {imgsz: 320, conf: 0.3}\n")
    config = load_config(path, {"model": {"imgsz": 480}, "source": {"path": "x.mp4"}})
    assert (config.model.imgsz, config.model.conf, config.source.path) == (480, 0.3, "x.mp4")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: {imgsz: big}", "model.imgsz: expected an integer, got str 'big'"),
        ("model: {img_size: 320}", "unknown key 'model.img_size' (did you mean 'imgsz'?)"),
        ("modle: {}", "unknown key 'modle' (did you mean 'model'?)"),
        ("model: {conf: 1.5}", "model.conf: expected a number between 0 and 1, got 1.5"),
        ("model: {task: seg}", "model.task: expected detect or segment, got 'seg'"),
        ("draw: {trails: yes please}", "draw.trails: expected true or false"),
        ("lines: {name: a}", "lines: expected a list"),
        ("lines: [{name: a, start: [0, 1]}]", "lines[0]: missing required key 'end'"),
        ("lines: [{name: a, start: [0, 1, 2], end: [3, 4]}]", "lines[0].start: expected a point [x, y]"),
        ("lines: [{name: a, start: [5, 5], end: [5, 5]}]", "lines[0]: start and end are the same point"),
        ("lines: [{name: a, start: [0, 0], end: [1, 1]}, {name: a, start: [0, 0], end: [2, 2]}]", "a repeated"),
        ("zones: [{name: z, polygon: [[0, 0], [1, 1]]}]", "zones[0].polygon: expected a list of at least 3 points"),
        ("tracker: {track_buffer_s: -1}", "tracker.track_buffer_s: expected a number of seconds >= 0"),
        ("output: {lookahead: -1}", "output.lookahead: expected null or an integer from 0 to 250, got -1"),
        ("- just a list", "expected a mapping of sections at the top level"),
        ("model: [unclosed", "YAML syntax error at line 2, column 1"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_wrong_choice_lists_every_value_the_key_allows(tmp_path: Path, highway: Path):
    config = tmp_path / "bad.yaml"
    config.write_text("output: {preset: turbo}\n")
    result = run_vpipe("run", highway, "--config", config, "--output", tmp_path / "out")
    x264_presets = "ultrafast, superfast, veryfast, faster, fast, medium, slow, slower or veryslow"
    one_line_error(result, f"{config}: output.preset: expected {x264_presets}, got 'turbo'")


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_geometry_is_checked_against_the_frame():
    config = load_config(None, {"lines": [{"name": "far", "start": [0, 10], "end": [1000, 10]}]})
    config.validate_geometry(1920, 1080)
    with pytest.raises(ConfigError, match=r"lines\[0\] \(far\): point \(1000, 10\) is outside the 960x540 frame"):
        config.validate_geometry(960, 540)


def test_slots_file_is_read_relative_to_the_config(tmp_path: Path):
    (tmp_path / "slots").mkdir()
    (tmp_path / "slots" / "lot.yaml").write_text("- {name: A1, polygon: [[0, 0], [10, 0], [10, 10]]}\n")
    (tmp_path / "parking.yaml").write_text("parking:\n  slots_file: slots/lot.yaml\n  debounce_s: 1\n")
    config = load_config(tmp_path / "parking.yaml")
    assert [(slot.name, slot.polygon[1]) for slot in config.parking.slots] == [("A1", (10.0, 0.0))]


def test_bad_slots_file_names_the_file_and_key(tmp_path: Path):
    (tmp_path / "lot.yaml").write_text("- {name: A1, polygon: [[0, 0], [10, 0]]}\n")
    (tmp_path / "parking.yaml").write_text("parking:\n  slots_file: lot.yaml\n")
    with pytest.raises(ConfigError, match=r"lot\.yaml: slots\[0\]\.polygon: expected a list of at least 3 points"):
        load_config(tmp_path / "parking.yaml")


def test_speed_points_come_in_fours_and_together():
    with pytest.raises(ConfigError, match=r"speed\.image_points: expected a list of 4 points"):
        load_config(None, {"speed": {"image_points": [[0, 0], [1, 0], [1, 1]], "world_points": [[0, 0]] * 4}})
    with pytest.raises(ConfigError, match="image_points and world_points must be given together"):
        load_config(None, {"speed": {"image_points": [[0, 0], [1, 0], [1, 1], [0, 1]]}})


@dataclass
class _NewerModel(ModelConfig):
    """The model section of a later vpipe that has one more setting."""

    sharpen: bool = False


@dataclass
class _NewerConfig(Config):
    model: _NewerModel = field(default_factory=_NewerModel)


def test_a_version_that_adds_a_setting_gives_a_config_the_same_run_identity():
    """A run folder is continued only by a run of the same settings (its identity, the digest); a
    version of vpipe that adds a setting must continue the runs of the version before it."""
    lines = [LineConfig(name="main", start=(0.0, 300.0), end=(960.0, 300.0))]
    before = Config(model=ModelConfig(conf=0.3), lines=lines).digest(["output.dir"])
    assert _NewerConfig(model=_NewerModel(conf=0.3), lines=lines).digest(["output.dir"]) == before
    assert _NewerConfig(model=_NewerModel(conf=0.3, sharpen=True), lines=lines).digest(["output.dir"]) != before
    assert Config(model=ModelConfig(conf=0.1), lines=lines).digest(["output.dir"]) != before
    # a list is taken whole: dropping a default class group is a change
    assert Config(class_groups=default_class_groups()[:1]).digest() != Config().digest()
    # an ignored key leaves no trace, set or not
    assert Config(output=OutputConfig(dir="elsewhere")).digest(["output.dir"]) == Config().digest(["output.dir"])
