"""Metric-learning losses: one class per file; each takes embeddings and labels (or miner index tuples).

* :class:`TripletHingeLoss` (``triplet_hinge.py``): ``max(0, Dp - Dn + m)``; mean over triplets,
  sum over negatives, or hardest negative per (anchor, positive).
* :class:`SmoothTripletLoss` (``smooth_triplet.py``): soft-plus and softmax (N-pair) forms.
* :class:`InfoNCELoss` (``info_nce.py``): NT-Xent on two views (SimCLR).
* :class:`SupConLoss` (``supcon.py``): supervised contrastive, L^sup_out.

Every loss returns a 0-dim tensor and records ``n_valid`` / ``empty`` (see ``base.py``).
"""

from replearn.lib.metric.losses.base import MetricLoss, TripletLoss
from replearn.lib.metric.losses.info_nce import InfoNCELoss
from replearn.lib.metric.losses.smooth_triplet import SmoothTripletLoss
from replearn.lib.metric.losses.supcon import SupConLoss
from replearn.lib.metric.losses.triplet_hinge import TripletHingeLoss

__all__ = ["InfoNCELoss", "MetricLoss", "SmoothTripletLoss", "SupConLoss", "TripletHingeLoss", "TripletLoss"]
