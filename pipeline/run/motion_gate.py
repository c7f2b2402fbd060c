"""``model.motion_gate``: skip the detector on frames that have not changed since the last detected one.

A parking camera or an empty road at night shows the same picture for minutes; the detector
would find the same boxes on every frame. The gate compares a small, blurred greyscale copy of each
frame the detection interval would detect with that of the last frame it let through, and holds
(skips) the frame when too few pixels changed. A held frame's detections are the last detected
frame's (:meth:`pipeline.run.frame_pipeline.FramePipeline.step`): the scene is the same, so the
tracks stay where they were.

The numbers, at the 1/4 scale the comparison runs at (one compared pixel is a 4x4 block):

- :data:`SCALE`: averaging 16 pixels cuts independent sensor noise fourfold. At 1/8 a far car
  moving a few pixels a frame fades into its blocks: of ``sample_videos/highway.mp4``'s frames with
  cars moving, 35 were held at 1/8 and none at 1/4 (besides its 65 repeated frames, held either way).
- :data:`PIXEL_THRESHOLD`: after the averaging and the blur a still scene's compared pixels move by
  a few grey levels (a codec's blocks flicker by up to about 10); a vehicle against the road differs
  by tens.
- :data:`MIN_CHANGED_SHARE`: 0.05 % of the frame, at 1920x1080 about a 32x32-pixel patch; a
  vehicle that covers more of the picture than that is seen before it moved by half its width.
- :data:`MAX_GAP_S`: a frame is detected at least once a second whatever the gate says, so a
  change too slow or too small for it (a bay taken while the light changes) is caught within it.

Example:
    >>> import numpy as np
    >>> gate = MotionGate()
    >>> road = np.full((480, 640, 3), 120, np.uint8)
    >>> car = road.copy()
    >>> car[200:240, 300:360] = 30  # a dark car comes into view
    >>> [gate.unchanged(image, t) for image, t in [(road, 0.0), (road, 0.1), (car, 0.2), (car, 0.3), (car, 1.2)]]
    [False, True, False, True, False]
"""

from __future__ import annotations

import cv2
import numpy as np

SCALE = 4
"""Frames are compared at 1/4 of their width and height: each compared pixel averages 16, which
cuts sensor noise; the comparison costs about 2.6 ms at 1920x1080 and 0.6 ms at 960x540 on one core
of the 2-core AMD EPYC the benchmarks ran on."""
BLUR_KERNEL = (3, 3)
"""Gaussian blur of the small copy: compression blocks and a pixel of camera shake even out."""
PIXEL_THRESHOLD = 20
"""Grey levels (of 255) a compared pixel must change by to count as changed."""
MIN_CHANGED_SHARE = 0.0005
"""The share of compared pixels that must change for the frame to be detected (0.05 %)."""
MAX_GAP_S = 1.0
"""Seconds of video after which a frame is detected even if nothing changed."""


def small_grey(image: np.ndarray) -> np.ndarray:
    """The copy the gate compares: ``image`` (BGR) at 1/:data:`SCALE` size, greyscale, blurred."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // SCALE), max(1, height // SCALE)), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(small, BLUR_KERNEL, 0)


class MotionGate:
    """Says which of one source's frames are unchanged since the last frame it let through.

    Used from one thread only (the detection thread: the gate decides before the model runs).

    Args:
        max_gap_s: Seconds of video after which a frame is let through even if unchanged.
    """

    def __init__(self, max_gap_s: float = MAX_GAP_S) -> None:
        self.max_gap_s = max_gap_s
        self._reference: np.ndarray | None = None
        self._reference_s = 0.0

    def unchanged(self, image: np.ndarray, timestamp_s: float) -> bool:
        """Whether ``image`` (at ``timestamp_s`` of video) can be skipped: less than
        :data:`MIN_CHANGED_SHARE` of it changed since the last frame let through, within
        ``max_gap_s`` of it. A frame let through (False) becomes the one the next are compared with."""
        small = small_grey(image)
        reference = self._reference
        recent = 0 <= timestamp_s - self._reference_s < self.max_gap_s  # a clock set back: detect
        if reference is not None and reference.shape == small.shape and recent:
            changed = np.count_nonzero(cv2.absdiff(small, reference) > PIXEL_THRESHOLD)
            if changed < MIN_CHANGED_SHARE * small.size:
                return True
        self._reference, self._reference_s = small, timestamp_s
        return False
