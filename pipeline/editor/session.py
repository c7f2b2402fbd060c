"""What the editor page reads and saves: one config file's geometry, checked as ``vpipe run`` checks it."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.config import Config, load_config
from pipeline.editor.document import ConfigDocument, Geometry
from pipeline.errors import ConfigError
from pipeline.yaml_io import read_text


class ConfigEditor:
    """Reads and writes the geometry of the config file at ``path`` for a ``width`` x ``height`` source.

    Args:
        path: The config file; it need not exist yet (saving creates it).
        width: The source's frame width in pixels.
        height: The source's frame height in pixels.
    """

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path = path
        self.width = width
        self.height = height
        self._lock = threading.Lock()  # one save at a time

    def state(self) -> dict[str, Any]:
        """The page's starting point: geometry in pixels, slots from ``slots_file`` (read only), and
        ``problem``, the error ``vpipe run`` would report for the file as it is now (None if none)."""
        text = read_text(self.path, "config file") if self.path.exists() else ""
        geometry = ConfigDocument.from_text(text, str(self.path)).geometry(self.width, self.height)
        problem, file_slots = None, []
        try:
            config = self.check(text)
            file_slots = [
                {"name": slot.name, "polygon": [list(p) for p in slot.polygon]}
                for slot in config.parking.slots[len(geometry.slots) :]
            ]
        except ConfigError as exc:
            problem = str(exc)
        return {
            "config": str(self.path),
            "exists": self.path.exists(),
            "width": self.width,
            "height": self.height,
            "problem": problem,
            "file_slots": file_slots,
            **asdict(geometry),
        }

    def check(self, text: str) -> Config:
        """The config ``text`` would be at :attr:`path`, in pixels, validated as ``vpipe run`` does.

        Raises:
            ConfigError: The first problem, naming the file and the key.
        """
        config = load_config(self.path, text=text).in_pixels(self.width, self.height)
        config.validate_geometry(self.width, self.height)
        return config

    def save(self, data: Any) -> str:
        """Write the page's geometry into the file, or nothing if the result would not load.

        Args:
            data: The page's JSON: ``{coordinates, lines, zones, slots, approaches, crosswalks}`` in pixels.

        Returns:
            What was saved, in words.

        Raises:
            ConfigError: The edited config is invalid (the file is untouched).
        """
        try:
            geometry = Geometry.from_json(data)
        except ValueError as exc:
            raise ConfigError(f"{self.path}: cannot save: {exc}") from None
        with self._lock:
            text = ConfigDocument.read(self.path).to_text(geometry, self.width, self.height)
            self.check(text)
            _write_atomically(self.path, text)
        counts = {"line": len(geometry.lines), "zone": len(geometry.zones), "slot": len(geometry.slots)}
        movements = {"approach": len(geometry.approaches), "crosswalk": len(geometry.crosswalks)}
        counts.update({name: n for name, n in movements.items() if n})  # only when there are some
        plural = {"approach": "approaches"}
        items = ", ".join(f"{n} {name if n == 1 else plural.get(name, name + 's')}" for name, n in counts.items())
        return f"saved {items} to {self.path} ({geometry.coordinates})"


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step: a crash mid-write leaves the old file, never half a file.

    A symlink is written through: its target is replaced and the link stays a link (replacing the
    link itself would leave the file it points to unchanged).
    """
    target = path.resolve()
    temporary = target.with_name(f".{target.name}.vpipe-edit.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError(f"{path}: cannot write config file ({exc.strerror or exc})") from None
