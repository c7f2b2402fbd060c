"""Model input from a BGR frame, exactly as Ultralytics' predictor makes it for a fixed-size export.

Example:
    >>> import numpy as np
    >>> letterbox(np.zeros((540, 960, 3), np.uint8), (384, 640)).shape
    (384, 640, 3)
    >>> letterbox_blob(np.zeros((540, 960, 3), np.uint8), (384, 640)).shape
    (1, 3, 384, 640)
"""

from __future__ import annotations

import cv2
import numpy as np

PAD_VALUE = 114
"""Ultralytics' letterbox grey."""


def letterbox_window(frame_shape: tuple[int, ...], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where a frame of ``frame_shape`` (h, w, ...) lands in a model input of ``size`` (h, w):
    ``(top, left, height, width)`` of the resized picture, the rest being the grey border.

    Example:
        >>> letterbox_window((540, 960), (384, 640))
        (12, 0, 360, 640)
    """
    height, width = size
    scale = min(height / frame_shape[0], width / frame_shape[1])
    new_height, new_width = max(1, round(frame_shape[0] * scale)), max(1, round(frame_shape[1] * scale))
    return (height - new_height) // 2, (width - new_width) // 2, new_height, new_width


def letterbox(image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Resize ``image`` to fit ``size`` (h, w) and centre it on grey: a BGR uint8 frame of that size.

    Args:
        image: A BGR frame.
        size: The model input (height, width).
        out: A (height, width, 3) uint8 array to write into (reused across frames: the grey border
            stays, so only the picture is written); a new one if None.
    """
    top, left, new_height, new_width = letterbox_window(image.shape, size)
    if out is None:
        out = np.full((*size, 3), PAD_VALUE, np.uint8)
    cv2.resize(image, (new_width, new_height), dst=out[top : top + new_height, left : left + new_width])
    return out


def letterbox_blob(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`letterbox` as the exported model's own input: an RGB NCHW float32 blob in [0, 1]."""
    return cv2.dnn.blobFromImage(letterbox(image, size), 1 / 255.0, swapRB=True)
