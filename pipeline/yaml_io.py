"""Reading the YAML files a user writes (configs, slots files) with one-line errors naming the file.

A YAML mapping that repeats a key is an error here (plain YAML keeps the last value silently, so a
second ``lines:`` section would replace the first unnoticed), and so is a file that is not UTF-8
text (such as a video passed as ``--config``) or one over :data:`MAX_YAML_BYTES`.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = path.write_text("model:\\n  conf: 0.2\\n  conf: 0.3\\n")
    >>> read_yaml(path, "config file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: ...c.yaml: duplicate key 'conf' at line 3, column 3
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

MAX_YAML_BYTES = 1_000_000
"""The largest file read, checked before parsing: PyYAML takes about 20 s and 250 MB per MB. A config
at every geometry limit (500 four-point slots) is about 50 KB."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a mapping that repeats a key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _check_size(path: str | Path, what: str, size: int) -> None:
    if size > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {what} larger than {MAX_YAML_BYTES // 1_000_000} MB, the most vpipe reads")


def read_text(path: str | Path, what: str) -> str:
    """The text of the file ``path`` (a ``what``, e.g. "config file", for the messages).

    Raises:
        ConfigError: Unreadable, too large, or not UTF-8 text (such as a video passed as ``--config``).
    """
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_YAML_BYTES + 1)  # no further: a pipe or device has no size to check first
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:  # first: a video passed as a config is "not UTF-8", not "too large"
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=len(data) <= MAX_YAML_BYTES)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: cannot read {what}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"expected a YAML {what}"
        ) from None
    _check_size(path, what, len(data))
    return text


def read_yaml(path: str | Path, what: str, text: str | None = None) -> Any:
    """Parse the YAML file ``path`` (a ``what``, e.g. "config file", for the messages), or ``text``
    standing for its contents.

    Raises:
        ConfigError: Unreadable, too large, not UTF-8 text, invalid YAML, or a repeated key.
    """
    if text is None:
        text = read_text(path, what)
    else:
        _check_size(path, what, len(text.encode()))
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if problem.startswith("duplicate key"):
            raise ConfigError(f"{path}: {problem}{where}") from None
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
