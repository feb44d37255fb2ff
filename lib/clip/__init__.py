"""CLIP-style two-tower image-text model (Radford et al. 2021): one embedding space for images and captions.

Modules, one concept each:

* :mod:`~replearn.lib.clip.loss`: ``ClipLoss`` and ``gather_features`` (torch.distributed).
* :mod:`~replearn.lib.clip.captions`: attributes measured on digit images, caption and prompt templates.
* :mod:`~replearn.lib.clip.text_tower`: tokeniser-based scratch text tower and the LiT tower.
* :mod:`~replearn.lib.clip.image_tower`: SmallCNN + projection.
* :mod:`~replearn.lib.clip.model`: ``TwoTower``, ``ClipConfig``, checkpoint loading.
* :mod:`~replearn.lib.clip.data`: digit pairs and users' Parquet / CSV pairs.
* :mod:`~replearn.lib.clip.trainer`: ``train_clip`` / ``train_digits``.
* :mod:`~replearn.lib.clip.evaluate`: zero-shot accuracy and Recall@K.
"""

from replearn.lib.clip.captions import CAPTION_TEMPLATES, PROMPT_TEMPLATES, class_prompts
from replearn.lib.clip.data import ClipPairs, DigitPairs, PairsError, digit_pairs, load_pairs, make_pairs
from replearn.lib.clip.evaluate import ClipEvaluation, evaluate_clip, retrieval_recall, zero_shot_accuracy
from replearn.lib.clip.image_tower import ImageTowerConfig
from replearn.lib.clip.loss import ClipBatchError, ClipLoss, gather_features
from replearn.lib.clip.model import ClipConfig, TwoTower, build_model, load_model
from replearn.lib.clip.text_tower import CaptionError, MissingPackageError, TextTowerConfig, lit_available
from replearn.lib.clip.trainer import ClipEpochLog, ClipTrainResult, train_clip, train_digits

__all__ = [
    "CAPTION_TEMPLATES", "PROMPT_TEMPLATES", "CaptionError", "ClipBatchError", "ClipConfig", "ClipEpochLog",
    "ClipEvaluation", "ClipLoss", "ClipPairs", "ClipTrainResult", "DigitPairs", "ImageTowerConfig",
    "MissingPackageError", "PairsError", "TextTowerConfig", "TwoTower", "build_model", "class_prompts",
    "digit_pairs", "evaluate_clip", "gather_features", "lit_available", "load_model", "load_pairs", "make_pairs",
    "retrieval_recall", "train_clip", "train_digits", "zero_shot_accuracy",
]
