"""The inference thread count chosen by timing the run's own first frames."""

from __future__ import annotations

import numpy as np

from pipeline.models.autotune import SpeedTrial
from pipeline.models.openvino_runner import OpenVINOModelRunner, PendingDetections


class ThreadCountTrial:
    """Runs OpenVINO inference on every core or on one fewer, whichever the run's first frames go
    faster with (a :class:`~pipeline.models.autotune.SpeedTrial`), then on that one.

    Where inference is most of the work (a large input) it wants every core; where it is not (a
    small one), a core left to decoding, tracking, drawing and encoding can win, as these then no
    longer wait on inference's threads for a core. Which one depends on the machine, its load and
    the source, so it is timed where it runs.

    Args:
        every_core: The model compiled for every core (the default).
        one_fewer: The same model compiled for one thread fewer.
    """

    def __init__(self, every_core: OpenVINOModelRunner, one_fewer: OpenVINOModelRunner) -> None:
        # The loser stays compiled (tens of MB) until the detector goes: freeing an OpenVINO model
        # mid-run can make a later Ctrl-C end the process with SIGSEGV before the outputs are final.
        self.trial: SpeedTrial[int, OpenVINOModelRunner] = SpeedTrial(
            {every_core.threads: every_core, one_fewer.threads: one_fewer}
        )
        self._current = every_core

    @property
    def threads(self) -> int:
        """Inference threads: the winner's once the trial has ended, every core's until then."""
        return self._current.threads

    @property
    def inference_precision(self) -> str:
        """The float layers' precision (both candidates are compiled alike)."""
        return self._current.inference_precision

    @property
    def in_flight(self) -> int:
        """Calls to keep in flight: enough for either candidate while the trial runs, then the winner's."""
        if self.trial.chosen is not None:
            return self._current.in_flight
        return max(model.in_flight for model in self.trial.candidates.values())

    def start(self, images: list[np.ndarray]) -> PendingDetections:
        """Start detecting several BGR frames on the candidate whose turn it is (or the winner)."""
        model = self.trial.next(len(images))
        if self.trial.chosen is not None:
            self._current = model
        return model.start(images)

    def rates_fps(self) -> dict[int, float]:
        """Median frames per second of each thread count's timed blocks, once the trial has ended
        (empty until then: partial rates would change from one source's summary to the next)."""
        return self.trial.medians() if self.trial.chosen is not None else {}
