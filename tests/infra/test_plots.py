"""The shared loss chart: loss against corpus words or optimiser steps, epoch boundaries marked, logged to MLflow."""

from __future__ import annotations

import pytest

from replearn.infra.plots import log_step_loss, step_loss_figure
from replearn.lib.step_loss import StepLoss


def test_step_axis_and_epoch_boundaries():
    steps = [StepLoss(s, 1 + (s > 4), 1.0 / s, 1) for s in range(1, 9)]   # epochs 1 (steps 1-4) and 2 (5-8)
    fig = step_loss_figure(steps, "loss (nats)", "demo", x="step")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "optimiser steps" and ax.get_ylabel() == "loss (nats)"
    assert ax.get_title() == "demo (8 points)"
    assert list(ax.lines[0].get_xdata()) == list(range(1, 9))
    assert [line.get_xdata()[0] for line in ax.lines[1:]] == [4]         # one boundary, after the last step of epoch 1
    with pytest.raises(ValueError, match="x must be one of"):
        step_loss_figure(steps, "l", "t", x="epochs")


def test_words_axis_is_the_default():
    class Log:                                                           # word2vec's StepLog: words, 0-based epochs
        def __init__(self, words, epoch, loss):
            self.words, self.epoch, self.loss = words, epoch, loss

    fig = step_loss_figure([Log(100, 0, 3.0), Log(200, 0, 2.0)], "l", "t")
    assert fig.axes[0].get_xlabel() == "corpus words processed" and len(fig.axes[0].lines) == 1


def test_log_step_loss_logs_the_png(home):
    from replearn.infra.tracking import client, experiment_id, tracking_uri

    uri = tracking_uri(home)
    run_id = client(uri).create_run(experiment_id(uri, "t", home)).info.run_id
    log_step_loss(uri, run_id, [StepLoss(1, 1, 2.0, 1), StepLoss(2, 2, 1.0, 1)], "l", "t", x="step")
    assert "plots/loss.png" in {a.path for a in client(uri).list_artifacts(run_id, "plots")}


def test_mining_hardness_figure_colours_the_bars_by_the_margin_and_labels_everything():
    import numpy as np

    from replearn.infra.plots import mining_hardness_figure
    from replearn.lib.metric.index_mining import mine_triplets
    from replearn.lib.metric.mining_stats import mining_stats

    rng = np.random.default_rng(0)
    stats = mining_stats(mine_triplets(rng.normal(size=(50, 4)).astype(np.float32), rng.integers(0, 3, 50), k=5),
                         margin=0.2, bins=10)
    fig = mining_hardness_figure(stats)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("d(anchor, negative) - d(anchor, positive)") and ax.get_ylabel() == "triplets"
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == stats.triplets == 50 and len(heights) == len(stats.hist_counts)
    orange = [p for p in ax.patches if p.get_x() + p.get_width() / 2 < 0.2]
    blue = [p for p in ax.patches if p.get_x() + p.get_width() / 2 > 0.2]
    assert len({p.get_facecolor() for p in orange}) == len({p.get_facecolor() for p in blue}) == 1
    assert orange[0].get_facecolor() != blue[0].get_facecolor()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"violate the margin: {100 * stats.margin_violations:.1f} % of triplets" in legend
    assert any(t.startswith("margin 0.2") for t in legend) and "50 triplets" in ax.get_title()
