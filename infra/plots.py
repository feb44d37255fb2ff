"""Training-curve plots logged to MLflow as images."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replearn.infra.tracking import client  # noqa: E402


def log_step_loss(tracking_uri: str, run_id: str, steps: Sequence, ylabel: str, title: str,
                  artifact: str = "plots/loss.png") -> None:
    """Plot ``step.loss`` against ``step.words`` (corpus words processed) and log it to the run as an image."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s.words for s in steps], [s.loss for s in steps], lw=1)
    ax.set_xlabel("corpus words processed")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    client(tracking_uri).log_figure(run_id, fig, artifact)
    plt.close(fig)
