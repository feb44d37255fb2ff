"""Loss reports every N steps: full windows, the rest at an epoch's end, the default grid of about 100 points."""

from __future__ import annotations

import pytest

from replearn.lib.errors import ReplearnInputError
from replearn.lib.step_loss import LossWindow, StepLoss, report_every


def test_windows_of_every_steps_and_the_rest_at_the_epoch_end():
    seen = []
    w = LossWindow(3, seen.append)
    losses = [1.0, 2.0, 3.0, 4.0, 5.0]                                   # epoch 1: 5 steps
    for b, loss in enumerate(losses):
        w.add(loss, b + 1, 1)
    w.flush()
    w.flush()                                                            # nothing collected: no report
    w.add(10.0, 6, 2)
    w.flush()
    assert seen == w.reports == [StepLoss(3, 1, 2.0, 3), StepLoss(5, 1, 4.5, 2), StepLoss(6, 2, 10.0, 1)]
    assert seen[0].to_dict() == {"step": 3, "epoch": 1, "loss": 2.0, "batches": 3}


def test_report_every_and_bad_arguments():
    assert report_every(1000) == 10 and report_every(30) == 1 and report_every(0) == 1
    assert report_every(1000, points=50) == 20
    with pytest.raises(ReplearnInputError, match="every must be"):
        LossWindow(0)
    with pytest.raises(ReplearnInputError, match="points must be"):
        report_every(10, points=0)
