"""Rebuild ``models/calibration/``: the frames int8 models are calibrated on by default.

Every 14th frame of highway.mp4 and every 16th of lot_topdown.mp4, resized to 640x360 (both clips
are 16:9) so the folder reads as one image source. street_topdown.mp4 is held out on purpose: its
counts test int8 on a scene it was not calibrated on.

Usage::

    python scripts/make_calibration_set.py
"""

from __future__ import annotations

from pathlib import Path

import cv2

from pipeline.io.sources.files import open_source

REPO = Path(__file__).resolve().parent.parent
CLIPS = {"highway": 14, "lot_topdown": 16}


def main() -> None:
    target = REPO / "models" / "calibration"
    target.mkdir(parents=True, exist_ok=True)
    for name, step in CLIPS.items():
        for frame in open_source(str(REPO / "sample_videos" / f"{name}.mp4")):
            if frame.frame_index % step == 0:
                image = cv2.resize(frame.image, (640, 360), interpolation=cv2.INTER_AREA)
                cv2.imwrite(str(target / f"{name}_{frame.frame_index:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {len(list(target.glob('*.jpg')))} frames to {target}")


if __name__ == "__main__":
    main()
