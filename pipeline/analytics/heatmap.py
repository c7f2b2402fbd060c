"""Where objects were over a run: a coarse 2-D histogram of track anchors.

Memory is fixed by the frame size and ``cell`` (not by the run's length).

Example:
    >>> import numpy as np
    >>> heat = Heatmap(width=100, height=50, cell=10)
    >>> heat.update(sv.Detections(xyxy=np.array([[0.0, 0.0, 20.0, 45.0]]), tracker_id=np.array([1])))
    >>> int(heat.counts[4, 1])
    1
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from pipeline.analytics.lines import tracked_anchors


class Heatmap:
    """Counts tracked anchors per ``cell`` x ``cell`` pixel block.

    Args:
        width: Frame width in pixels.
        height: Frame height in pixels.
        cell: Block size in pixels.
    """

    def __init__(self, width: int, height: int, cell: int = 8) -> None:
        self.width, self.height, self.cell = width, height, cell
        self.counts = np.zeros((-(-height // cell), -(-width // cell)), np.int64)

    def update(self, detections: sv.Detections) -> None:
        """Add one frame's tracked anchors."""
        for _, (x, y), _ in tracked_anchors(detections):
            row = min(max(int(y) // self.cell, 0), self.counts.shape[0] - 1)
            column = min(max(int(x) // self.cell, 0), self.counts.shape[1] - 1)
            self.counts[row, column] += 1
