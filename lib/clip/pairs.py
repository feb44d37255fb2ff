"""The two-tower flow's data: a source routed to its pairs, split into training and held-out pairs, with the
training captions of every epoch and the caption gallery, as arrays for one ``.npz``.

* ``digits`` / ``mnist:<folder>``: captions are generated from the label and
  attributes measured on each image (:func:`~replearn.lib.clip.data.digit_pairs`);
  training captions are drawn afresh for each epoch from the training
  templates, held-out pairs use held-out templates. The gallery is every
  caption the training templates can make, plus the held-out captions.
* A Parquet / CSV file of (image, caption): a seeded ``n_test`` fraction of the
  rows is held out (:func:`holdout_split`); the same captions serve every epoch;
  the gallery is the file's distinct captions. Unreadable images are skipped and
  listed in ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replearn.lib.clip.captions import all_captions
from replearn.lib.clip.data import ClipPairs, digit_pairs, load_pairs
from replearn.lib.metric.datasets import MNIST_PREFIX, load_dataset
from replearn.lib.metric.images import SkippedImage


def _strings(xs) -> np.ndarray:
    return np.array([str(x) for x in xs], dtype=np.str_)


@dataclass(frozen=True)
class PairSplit:
    """Training and held-out pairs of one source.

    Attributes:
        train_images: float32 (N_train, 1, H, W) in [0, 1].
        train_captions: str (E, N_train): the training caption of each image in each of E epochs.
        train_keys: N_train source keys.
        train_labels: int64 (N_train,) digit values for generated captions, else None.
        test: the held-out :class:`~replearn.lib.clip.data.ClipPairs` (labels where known).
        gallery: the captions exported for image -> caption search (sorted, distinct).
        vocab_captions: the captions a scratch text tower builds its vocabulary from.
        skipped: unreadable images of a user's file (empty for digits).
    """

    train_images: np.ndarray
    train_captions: np.ndarray
    train_keys: list[str]
    train_labels: np.ndarray | None
    test: ClipPairs
    gallery: list[str]
    vocab_captions: list[str]
    skipped: list[SkippedImage] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` the flow stores (read back by :func:`held_out_pairs` / :func:`epoch_captions`):
        ``train_images``, ``train_captions``, ``train_keys``, ``test_images``, ``test_captions``, ``test_keys``,
        ``gallery``, ``vocab_captions``, and ``train_labels`` / ``test_labels`` where labels are known."""
        arrays = dict(train_images=self.train_images, train_captions=self.train_captions,
                      train_keys=_strings(self.train_keys), test_images=self.test.images,
                      test_captions=_strings(self.test.captions), test_keys=_strings(self.test.keys),
                      gallery=_strings(self.gallery), vocab_captions=_strings(self.vocab_captions))
        if self.train_labels is not None:
            arrays.update(train_labels=self.train_labels, test_labels=self.test.labels)
        return arrays

    def info(self) -> dict[str, int]:
        """Counts: ``train_pairs``, ``test_pairs``, ``gallery_captions``, ``skipped``."""
        return {"train_pairs": len(self.train_images), "test_pairs": len(self.test.images),
                "gallery_captions": len(self.gallery), "skipped": len(self.skipped)}


def holdout_split(n: int, n_test: float, seed: int, source: str = "pairs") -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``max(1, round(n_test * n))`` of ``n`` pairs, drawn with ``numpy.random.default_rng(seed)``.

    Returns:
        (test_idx, train_idx): int64 arrays, ascending, partitioning 0..n-1.

    Raises:
        ValueError: fewer than 2 pairs would be left for training (the message names ``source``).
    """
    k = max(1, int(round(n_test * n)))
    if n - k < 2:
        raise ValueError(f"{source}: {n} readable pairs leave fewer than 2 for training after holding out {k}; "
                         f"bring more pairs")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:k]), np.sort(order[k:])


def digit_split(source: str, epochs: int, n_test: float, n_test_templates: int, seed: int) -> PairSplit:
    """``digits`` or ``mnist:<folder>`` (routed by :func:`~replearn.lib.metric.datasets.load_dataset`) with
    generated captions: one caption draw per epoch (``epochs`` >= 1).

    Raises:
        PairsError: a split leaving no training or held-out image (from ``digit_pairs``).
        ImageDataError / ReplearnInputError: a missing or malformed MNIST folder.
    """
    ds = load_dataset(source)
    dp = digit_pairs(ds, n_test=n_test, seed=seed, n_test_templates=n_test_templates)
    captions = np.stack([_strings(dp.train_captions(e)) for e in range(epochs)])          # (E, N_train)
    vocab = all_captions(dp.train_templates)
    gallery = sorted(set(vocab) | set(dp.test.captions))
    return PairSplit(dp.train_images, captions, dp.train_keys, dp.train_labels, dp.test, gallery, vocab)


def file_split(path: Path | str, image_column: str, caption_column: str, epochs: int, n_test: float,
               seed: int) -> PairSplit:
    """A user's Parquet / CSV of (image, caption) split by :func:`holdout_split`; the same captions every epoch.

    Raises:
        PairsError / CaptionError: from :func:`~replearn.lib.clip.data.load_pairs` (columns, empty captions,
            nothing readable).
        ValueError: too few readable pairs to train on.
    """
    pairs = load_pairs(Path(path), image_column, caption_column)
    te, tr = holdout_split(len(pairs), n_test, seed, str(path))
    train_captions = [pairs.captions[i] for i in tr]
    test = ClipPairs(pairs.images[te], [pairs.captions[i] for i in te], [pairs.keys[i] for i in te])
    return PairSplit(pairs.images[tr], np.stack([_strings(train_captions)] * epochs), [pairs.keys[i] for i in tr],
                     None, test, sorted(set(pairs.captions)), train_captions, list(pairs.skipped))


def load_pair_split(source: str, image_column: str, caption_column: str, epochs: int, n_test: float,
                    n_test_templates: int, seed: int) -> PairSplit:
    """Route ``source`` (``digits``, ``mnist:<folder>``, or a Parquet / CSV path) to :func:`digit_split` or
    :func:`file_split`. ``n_test``: held-out fraction; ``n_test_templates``: caption templates held out
    (generated captions only); ``seed`` seeds the split and the caption draws."""
    if source == "digits" or source.startswith(MNIST_PREFIX):
        return digit_split(source, epochs, n_test, n_test_templates, seed)
    return file_split(source, image_column, caption_column, epochs, n_test, seed)


def epoch_captions(train_captions: np.ndarray, epoch: int) -> list[str]:
    """The training captions of ``epoch`` (0-based) from the (E, N_train) array; epochs past E reuse the last."""
    return [str(c) for c in train_captions[min(epoch, len(train_captions) - 1)]]


def held_out_pairs(arrays: dict[str, np.ndarray]) -> ClipPairs:
    """The held-out :class:`~replearn.lib.clip.data.ClipPairs` from the arrays of :meth:`PairSplit.arrays`."""
    return ClipPairs(arrays["test_images"], [str(c) for c in arrays["test_captions"]],
                     [str(k) for k in arrays["test_keys"]], arrays.get("test_labels"))
