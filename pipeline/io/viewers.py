"""What the runner shows annotated frames through, live: ``--serve`` and ``--show`` both fit it."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class FrameViewer(Protocol):
    """Something that shows annotated frames live (:class:`~pipeline.io.live_view.LiveView`,
    :class:`~pipeline.io.live_view.WindowView`). ``publish`` must return at once: the pipeline
    calls it after every frame."""

    def publish(
        self, source: str, image_bgr: np.ndarray, frame_index: int, timestamp_s: float, counts: dict[str, Any]
    ) -> None: ...
