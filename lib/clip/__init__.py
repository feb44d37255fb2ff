"""CLIP-style two-tower image-text model (Radford et al. 2021): one embedding space for images and captions.

Modules, one concept each:

* :mod:`~replearn.lib.clip.loss`: ``ClipLoss`` and ``gather_features`` (torch.distributed).
* :mod:`~replearn.lib.clip.captions`: attributes measured on digit images, caption and prompt templates.
* :mod:`~replearn.lib.clip.text_tower`: tokeniser-based scratch text tower and the LiT tower.
* :mod:`~replearn.lib.clip.image_tower`: SmallCNN + projection.
* :mod:`~replearn.lib.clip.config`: ``ClipConfig`` and the tower configs (no torch).
* :mod:`~replearn.lib.clip.model`: ``TwoTower``, checkpoint loading.
* :mod:`~replearn.lib.clip.data`: digit pairs and users' Parquet / CSV pairs.
* :mod:`~replearn.lib.clip.mining`: hard-negative captions from an index over the training captions.
* :mod:`~replearn.lib.clip.trainer`: ``train_clip`` / ``train_digits``.
* :mod:`~replearn.lib.clip.evaluate`: zero-shot accuracy and Recall@K.
"""

import importlib

# name -> submodule: loaded on first use (PEP 562), so importing one submodule (e.g. the torch-free .config that
# the CLI reads) does not load torch and every tower
_HOMES = {
    "CAPTION_TEMPLATES": "captions", "PROMPT_TEMPLATES": "captions", "class_prompts": "captions",
    "ClipConfig": "config", "ImageTowerConfig": "config", "TextTowerConfig": "config",
    "ClipPairs": "data", "DigitPairs": "data", "PairsError": "data", "digit_pairs": "data", "load_pairs": "data",
    "make_pairs": "data",
    "ClipEvaluation": "evaluate", "evaluate_clip": "evaluate", "retrieval_recall": "evaluate",
    "zero_shot_accuracy": "evaluate",
    "ClipBatchError": "loss", "ClipLoss": "loss", "gather_features": "loss",
    "TwoTower": "model", "build_model": "model", "load_model": "model",
    "CaptionError": "text_tower", "MissingPackageError": "text_tower", "lit_available": "text_tower",
    "ClipEpochLog": "trainer", "ClipTrainResult": "trainer", "train_clip": "trainer", "train_digits": "trainer",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "CAPTION_TEMPLATES", "PROMPT_TEMPLATES", "CaptionError", "ClipBatchError", "ClipConfig", "ClipEpochLog",
    "ClipEvaluation", "ClipLoss", "ClipPairs", "ClipTrainResult", "DigitPairs", "ImageTowerConfig",
    "MissingPackageError", "PairsError", "TextTowerConfig", "TwoTower", "build_model", "class_prompts",
    "digit_pairs", "evaluate_clip", "gather_features", "lit_available", "load_model", "load_pairs", "make_pairs",
    "retrieval_recall", "train_clip", "train_digits", "zero_shot_accuracy",
]
