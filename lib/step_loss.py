"""Loss reported every N optimiser steps: the points of a training curve finer than one per epoch.

The metric (lib/metric/trainer.py) and CLIP (lib/clip/trainer.py) training loops
feed every batch's loss to a :class:`LossWindow`; it reports the mean of each run
of ``every`` consecutive steps as a :class:`StepLoss` (and the shorter rest at the
end of an epoch, so no window spans two epochs). The reports only read the losses
the loop already computed: training itself is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from replearn.lib.errors import ReplearnInputError

__all__ = ["DEFAULT_POINTS", "LossWindow", "StepLoss", "report_every"]

DEFAULT_POINTS = 100
"""Points a whole run reports by default (:func:`report_every`)."""


@dataclass(frozen=True)
class StepLoss:
    """The mean loss of a window of consecutive optimiser steps.

    Attributes:
        step: global steps done at the window's end, counted from the first step of
            the run (``epoch_index * steps_per_epoch + batch + 1``, resumed epochs
            included), so a resumed run continues the same x-axis.
        epoch: 1-based epoch of the window.
        loss: mean of the window's per-batch losses (the loss's own unit).
        batches: batches averaged, ``1..every``.
    """

    step: int
    epoch: int
    loss: float
    batches: int

    def to_dict(self) -> dict:
        return asdict(self)


def report_every(total_steps: int, points: int = DEFAULT_POINTS) -> int:
    """Steps per report so that a run of ``total_steps`` gives about ``points`` points: ``max(1, total // points)``.

    Raises:
        ReplearnInputError: ``points < 1``.
    """
    if points < 1:
        raise ReplearnInputError(f"points must be >= 1, got {points}")
    return max(1, int(total_steps) // int(points))


class LossWindow:
    """Collects per-batch losses and reports their mean every ``every`` steps and at each epoch's end.

    Args:
        every: steps per report, >= 1.
        on_step: called with each :class:`StepLoss`, or None.

    Attributes:
        reports: every :class:`StepLoss` reported so far, in order.

    Raises:
        ReplearnInputError: ``every < 1``.
    """

    def __init__(self, every: int, on_step: Callable[[StepLoss], None] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ReplearnInputError(f"every must be an int >= 1 (optimiser steps per loss report), got {every!r}")
        self.every = every
        self.on_step = on_step
        self.reports: list[StepLoss] = []
        self._losses: list[float] = []
        self._step = 0
        self._epoch = 0

    def add(self, loss: float, step: int, epoch: int) -> None:
        """Record the loss of global step ``step`` (1-based) in epoch ``epoch`` (1-based); report a full window."""
        self._losses.append(float(loss))
        self._step, self._epoch = step, epoch
        if len(self._losses) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Report the losses collected since the last report (none: nothing); call at the end of an epoch."""
        if not self._losses:
            return
        log = StepLoss(self._step, self._epoch, sum(self._losses) / len(self._losses), len(self._losses))
        self._losses = []
        self.reports.append(log)
        if self.on_step is not None:
            self.on_step(log)
