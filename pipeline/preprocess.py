"""Model input from a BGR frame, exactly as Ultralytics' predictor makes it for a fixed-size export.

Example:
    >>> import numpy as np
    >>> letterbox_blob(np.zeros((540, 960, 3), np.uint8), (384, 640)).shape
    (1, 3, 384, 640)
"""

from __future__ import annotations

import cv2
import numpy as np


def letterbox_blob(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``image`` to fit ``size`` (h, w), centre it on grey (114), and return it as an RGB NCHW
    float32 blob in [0, 1].

    Args:
        image: A BGR frame.
        size: The model input (height, width).
    """
    height, width = size
    scale = min(height / image.shape[0], width / image.shape[1])
    new_height, new_width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
    canvas = np.full((height, width, 3), 114, np.uint8)
    top, left = (height - new_height) // 2, (width - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = cv2.resize(
        image, (new_width, new_height), interpolation=cv2.INTER_LINEAR
    )
    return cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True)
