"""The one way vpipe reads and writes YAML (configs, slots files, ground truth): ruamel.yaml, YAML 1.2.

``vpipe run`` reads with :func:`read_yaml` (safe types) and ``vpipe edit`` round-trips with a
:func:`yaml_parser` ``"rt"`` instance, so a value means the same on the way in and out: in YAML 1.2
``yes`` and ``on`` are strings (booleans are ``true`` and ``false``), ``010`` is ten (``0o10`` is octal).

Both refuse what a config has no use for and a hostile file could abuse, each as a one-line error
naming the file, line and column: a mapping that repeats a key (plain YAML keeps the last value, so a
second ``lines:`` section would replace the first unnoticed), a tag beyond YAML's own types, anchors
and aliases (a few lines of nested aliases expand to billions of values: "billion laughs"), and
nesting deeper than :data:`MAX_DEPTH`. A file that is not UTF-8 text (such as a video passed as
``--config``) or larger than :data:`MAX_YAML_BYTES` is refused before it is parsed.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = path.write_text("model:\\n  conf: 0.2\\n  conf: 0.3\\n")
    >>> read_yaml(path, "config file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.ConfigError: ...c.yaml: duplicate key 'conf' at line 3, column 3
    >>> parse_yaml("a: yes\\nb: 010\\nc: 0x10\\n", "c.yaml")
    {'a': 'yes', 'b': 10, 'c': 16}
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import RoundTripConstructor, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from pipeline.errors import ConfigError

MAX_YAML_BYTES = 1_000_000
"""The largest file read, checked before parsing: ruamel.yaml (pure Python) took 10 s and 200 MB on a
1 MB file (17 s in round trip, for the editor) on a busy 2-core machine. A config at every geometry
limit (500 four-point slots) is about 50 KB."""

MAX_DEPTH = 50
"""The deepest nesting read (a config nests 7 levels at most: a lane point's x); deeper, parsing runs out of stack."""


class _RefusedError(MarkedYAMLError):
    """Well-formed YAML that vpipe refuses (a repeated key, an alias, a tag): reported without "syntax error"."""


class _Composer(Composer):
    """The node tree, refusing anchors and aliases (one alias can stand for a whole subtree, and a few
    nested ones for more values than memory holds) and deep nesting."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if self.depth >= MAX_DEPTH:
            raise _RefusedError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        if isinstance(event, AliasEvent) or event.anchor is not None:
            sign = "*" if isinstance(event, AliasEvent) else "&"
            raise _RefusedError(
                None, None, f"YAML anchors and aliases are not supported ({sign}{event.anchor})", event.start_mark
            )
        return super().compose_node(parent, index)


def _check_mapping_key(self: SafeConstructor, node: Any, key_node: Any, mapping: Any, key: Any, value: Any) -> bool:
    if key in mapping:
        raise _RefusedError(None, None, f"duplicate key '{key}'", key_node.start_mark)
    return True


def _refuse_tag(self: SafeConstructor, node: Any) -> None:
    raise _RefusedError(None, None, f"YAML tag '{node.tag}' is not supported", node.start_mark)


class _SafeConstructor(SafeConstructor):
    check_mapping_key = _check_mapping_key


class _RoundTripConstructor(RoundTripConstructor):
    check_mapping_key = _check_mapping_key


# None: any tag without a constructor of its own (the round-trip constructor would keep it as it is)
_SafeConstructor.add_constructor(None, _refuse_tag)
_RoundTripConstructor.add_constructor(None, _refuse_tag)


def yaml_parser(kind: Literal["safe", "rt"]) -> YAML:
    """A YAML 1.2 reader and writer with the refusals above: ``safe`` gives plain Python values,
    ``rt`` (round trip) nodes that keep comments and how each scalar was written, for the editor."""
    yaml = YAML(typ=kind, pure=True)
    yaml.Composer = _Composer
    yaml.Constructor = _SafeConstructor if kind == "safe" else _RoundTripConstructor
    return yaml


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


def parse_yaml(text: str, origin: str | Path, yaml: YAML | None = None) -> Any:
    """Parse YAML ``text`` from the file ``origin`` (named in errors) with ``yaml`` (default: a ``safe``
    :func:`yaml_parser`).

    Raises:
        ConfigError: Invalid YAML, or YAML that vpipe refuses (see the module's docstring), in one line.
    """
    try:
        return (yaml or yaml_parser("safe")).load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, _RefusedError):
            raise ConfigError(f"{origin}: {problem}{where}") from None
        raise ConfigError(f"{origin}: YAML syntax error{where}: {problem}") from None


def read_yaml(path: str | Path, what: str, text: str | None = None) -> Any:
    """Parse the YAML file ``path`` (a ``what``, e.g. "config file", for the messages), or ``text``
    standing for its contents.

    Raises:
        ConfigError: Unreadable, too large, not UTF-8 text, invalid YAML, or YAML vpipe refuses.
    """
    if text is None:
        text = read_text(path, what)
    else:
        _check_size(path, what, len(text.encode()))
    return parse_yaml(text, path)


def dump_yaml(data: Any) -> str:
    """``data`` (plain lists, dicts, strings and numbers) as YAML 1.2 text that :func:`read_yaml` reads
    back as ``data``: a string such as ``"010"`` or ``"true"`` is quoted; short lists of scalars stay on one line.

    Example:
        >>> print(dump_yaml([{"name": "010", "polygon": [[0, 0], [10, 0], [10, 10]]}]), end="")
        - name: '010'
          polygon:
          - [0, 0]
          - [10, 0]
          - [10, 10]
    """
    yaml = yaml_parser("safe")
    yaml.default_flow_style = None
    yaml.width = 4096  # a long name stays on its key's line
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()
