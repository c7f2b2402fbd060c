"""Capture times of snapshot images, from their file names or their EXIF data.

Snapshot cameras save one image every few seconds or minutes, often irregularly; a fixed frame rate
would misdate them, so an image folder is timed from what each image says about itself.

Example:
    >>> capture_time(Path("2012-09-11_15_16_58.jpg"))
    datetime.datetime(2012, 9, 11, 15, 16, 58)
    >>> capture_time(Path("cam1_20240105T081500.png"))
    datetime.datetime(2024, 1, 5, 8, 15)
    >>> capture_time(Path("frame_0001.png")) is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PIL import Image

# 2012-09-11_15_16_58, 2012-09-11 15:16:58, 2012-09-11T15-16-58, 20120911_151658, 20120911T151658
_NAME_TIME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[ _T-]?(\d{2})[_:.-]?(\d{2})[_:.-]?(\d{2})(?:[.,](\d{1,6}))?")
_EXIF_DATETIME, _EXIF_IFD, _EXIF_DATETIME_ORIGINAL = 306, 0x8769, 36867


def capture_time(path: Path) -> datetime | None:
    """The time in the file name, else the EXIF capture time, else None."""
    match = _NAME_TIME.search(path.stem)
    if match:
        try:
            *fields, fraction = match.groups()
            micro = int((fraction or "0").ljust(6, "0"))
            return datetime(*(int(v) for v in fields), micro)  # type: ignore[arg-type]
        except ValueError:
            pass  # digits that are not a date, e.g. a serial number
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            text = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
        return datetime.strptime(str(text).strip(), "%Y:%m:%d %H:%M:%S") if text else None
    except (OSError, ValueError, ImportError):  # unreadable (ultralytics' patched open then imports pi_heif)
        return None


def snapshot_offsets_s(paths: Sequence[Path]) -> list[float] | None:
    """Seconds from the earliest image for each path, or None unless every image has a time.

    Example:
        >>> snapshot_offsets_s([Path("2012-09-11_15_16_58.jpg"), Path("2012-09-11_15_21_00.jpg")])
        [0.0, 242.0]
    """
    times = [capture_time(path) for path in paths]
    if not times or any(t is None for t in times):
        return None
    first = min(times)  # type: ignore[type-var]
    return [(t - first).total_seconds() for t in times]  # type: ignore[operator]
