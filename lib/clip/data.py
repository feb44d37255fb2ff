"""(image, caption) pairs for the two-tower model: generated for digits, or read from a user's Parquet / CSV.

* :func:`digit_pairs`: an :class:`~replearn.lib.metric.images.ImageDataset` of
  digits (scikit-learn's 8x8 or MNIST) split into training and held-out images.
  Attribute bins are fitted on the training images only
  (:mod:`replearn.lib.clip.captions`). Each training image gets one caption per
  epoch, drawn from the *train* templates with a generator seeded by
  ``(seed, epoch)``; each held-out image gets one fixed caption from the
  *held-out* templates.
* :func:`load_pairs`: a Parquet (or folder of them) or CSV file with an image
  column (encoded bytes, a path, or the Hugging Face Image struct
  ``{bytes, path}``; CSV: paths) and a caption column. Images of any size and
  mode are decoded with Pillow to grey ``size x size``. Unreadable, missing or
  zero-byte images are skipped, listed in ``skipped`` by row and counted in a
  warning; captions that tokenise to nothing stop the load with an error naming
  the rows (checked before any image is decoded).
* :func:`make_pairs`: pairs from arrays already in memory; a different number
  of images and captions is an error.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replearn.lib.clip.captions import (
    AttributeBins,
    attribute_words,
    generate_captions,
    measure_attributes,
    split_templates,
)
from replearn.lib.clip.text_tower import CLIP_TOKENIZER, check_captions
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.images import ImageDataError, ImageDataset, SkippedImage, decode_image


class PairsError(ReplearnInputError):
    """Pairs cannot be built: counts of images and captions differ, a column is missing, nothing readable."""


@dataclass
class ClipPairs:
    """Images with one caption each.

    Attributes:
        images: float32 (N, 1, H, W) in [0, 1].
        captions: N strings, each with at least one token.
        keys: N strings naming the source of each pair (path or ``<file>#row=<i>``).
        labels: int64 (N,) class ids where known (digits), else None.
        skipped: rows not loaded (unreadable images), with the reason.
    """

    images: np.ndarray
    captions: list[str]
    keys: list[str]
    labels: np.ndarray | None = None
    skipped: list[SkippedImage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)


def make_pairs(images: np.ndarray, captions: Sequence[str], keys: Sequence[str] | None = None,
               labels: np.ndarray | None = None, where: str = "the pairs") -> ClipPairs:
    """Validated :class:`ClipPairs` from arrays: ``images`` (N, 1, H, W) or (N, H, W) float, N captions.

    Raises:
        PairsError: a different number of images and captions (or keys / labels), or bad image shape.
        CaptionError: captions that tokenise to nothing, naming the rows.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]                                                           # (N, H, W) -> (N, 1, H, W)
    if x.ndim != 4:
        raise PairsError(f"images in {where} must be (N, 1, H, W) or (N, H, W), got shape {x.shape}")
    captions = list(captions)
    if len(x) != len(captions):
        raise PairsError(f"{where}: {len(x)} images but {len(captions)} captions; give exactly one caption per "
                         f"image (same order)")
    keys = [f"pair/{i}" for i in range(len(x))] if keys is None else list(keys)
    if len(keys) != len(x):
        raise PairsError(f"{where}: {len(x)} images but {len(keys)} keys")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(x),):
            raise PairsError(f"{where}: {len(x)} images but labels of shape {labels.shape}")
    check_captions(captions, CLIP_TOKENIZER, where)
    return ClipPairs(x, captions, keys, labels)


# --------------------------------------------------------------------------- digits


@dataclass
class DigitPairs:
    """Digit images split into training and held-out pairs, with generated captions.

    Attributes:
        train_images: float32 (N_train, 1, H, W). train_labels: int64 (N_train,).
        train_words: attribute words of each training image (:func:`~replearn.lib.clip.captions.attribute_words`).
        train_keys: N_train source keys.
        test: held-out :class:`ClipPairs` (captions from the held-out templates, labels set).
        train_templates, test_templates: the template split.
        bins: the :class:`~replearn.lib.clip.captions.AttributeBins` fitted on the training images.
        seed: seeds the per-epoch caption draws.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    train_words: list[dict[str, str]]
    train_keys: list[str]
    test: ClipPairs
    train_templates: tuple[str, ...]
    test_templates: tuple[str, ...]
    bins: AttributeBins
    seed: int = 0

    def train_captions(self, epoch: int) -> list[str]:
        """One caption per training image for ``epoch`` (0-based), drawn from the train templates; reproducible."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 7, epoch]))
        return generate_captions(self.train_labels, self.train_words, self.train_templates, rng)


def digit_pairs(dataset: ImageDataset, n_test: int | float = 0.2, seed: int = 0, n_test_templates: int = 3,
                template_seed: int = 0) -> DigitPairs:
    """Split digit images into training and held-out images and caption them.

    Args:
        dataset: digits with class names "0".."9" (``load_digits_8x8`` or ``load_mnist_test``).
        n_test: held-out images: an int count, or a fraction in (0, 1).
        seed: seeds the image split, the held-out captions and the per-epoch train captions.
        n_test_templates: templates held out for the test captions (see ``split_templates``).
        template_seed: which templates are held out.

    Raises:
        PairsError: class names other than digits, or a split leaving no training or held-out image.
    """
    names = list(dataset.classes.names)
    if not all(n.isdigit() and 0 <= int(n) <= 9 for n in names):
        raise PairsError(f"digit_pairs needs class names '0'..'9', got {names[:10]}; for other images bring "
                         f"your own captions (load_pairs)")
    digits = np.asarray([int(n) for n in names], dtype=np.int64)[dataset.labels]  # class ids -> digit values
    N = len(dataset)
    k = int(round(n_test * N)) if isinstance(n_test, float) else int(n_test)
    if not 1 <= k <= N - 2:
        raise PairsError(f"n_test={n_test} holds out {k} of {N} images; keep at least 1 held out and 2 for "
                         f"training")
    order = np.random.default_rng(np.random.SeedSequence([seed, 3])).permutation(N)
    test_idx, train_idx = np.sort(order[:k]), np.sort(order[k:])
    train_templates, test_templates = split_templates(n_test=n_test_templates, seed=template_seed)
    attrs = measure_attributes(dataset.images)
    y_tr, y_te = digits[train_idx], digits[test_idx]
    bins = AttributeBins.fit({a: v[train_idx] for a, v in attrs.items()}, y_tr)
    words_tr = attribute_words(bins.bin({a: v[train_idx] for a, v in attrs.items()}, y_tr))
    words_te = attribute_words(bins.bin({a: v[test_idx] for a, v in attrs.items()}, y_te))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    test_captions = generate_captions(y_te, words_te, test_templates or train_templates, rng)
    test = ClipPairs(dataset.images[test_idx], test_captions, [dataset.keys[i] for i in test_idx], y_te)
    return DigitPairs(dataset.images[train_idx], y_tr, words_tr, [dataset.keys[i] for i in train_idx], test,
                      train_templates, test_templates, bins, seed)


# --------------------------------------------------------------------------- files


def _read_table(path: Path, columns: list[str]):
    import pyarrow as pa

    if path.suffix.lower() in (".csv", ".tsv"):
        import pyarrow.csv as pacsv

        try:
            parse = pacsv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            table = pacsv.read_csv(path, parse_options=parse,
                                   convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        except (OSError, pa.ArrowInvalid) as e:
            raise PairsError(f"cannot read {path} as CSV: {e}") from None
    else:
        import pyarrow.dataset as pads

        try:
            table = pads.dataset(str(path), format="parquet").to_table()
        except (OSError, pa.ArrowInvalid) as e:
            raise PairsError(f"cannot read {path} as Parquet: {e}") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise PairsError(f"{path} has no column {missing[0]!r}; its columns are {table.column_names}; pass "
                         f"--image-column and --caption-column (image_column=, caption_column=) from those")
    return table


def load_pairs(path: Path | str, image_column: str = "image", caption_column: str = "caption",
               size: int = 28) -> ClipPairs:
    """(image, caption) pairs from a Parquet file (or folder of them) or a CSV / TSV file.

    Args:
        path: ``.parquet`` file or folder, or ``.csv`` / ``.tsv``.
        image_column: per row, encoded image bytes, a path (relative paths resolve
            against the file's folder) or ``{bytes, path}``.
        caption_column: the caption text.
        size: output side in pixels, >= 1 (the image tower resizes again if needed).

    Returns:
        :class:`ClipPairs` (labels None, keys the image paths or ``<file>#row=<i>``),
        ``skipped`` listing each unreadable / missing / zero-byte / null image by row.

    Raises:
        PairsError: missing file or column, unreadable table, or no readable image.
        CaptionError: captions that tokenise to nothing (null, blank, punctuation
            only), naming every such row; raised before any image is decoded.
    """
    path = Path(path)
    if not path.exists():
        raise PairsError(f"pairs file {path} not found; pass a Parquet or CSV file with columns "
                         f"{image_column!r} and {caption_column!r}")
    if not isinstance(size, int) or size < 1:
        raise PairsError(f"size must be a positive int, got {size!r}")
    table = _read_table(path, [image_column, caption_column])
    captions = table.column(caption_column).to_pylist()
    check_captions(captions, CLIP_TOKENIZER, f"{path} column {caption_column!r} (data rows counted from 0)")
    base = path if path.is_dir() else path.parent
    images: list[np.ndarray] = []
    kept_captions: list[str] = []
    keys: list[str] = []
    skipped: list[SkippedImage] = []
    for row, value in enumerate(table.column(image_column).to_pylist()):
        where = f"{path}#row={row}"
        if isinstance(value, dict):  # Hugging Face Image struct: bytes when present (even empty), else the path
            value = value["bytes"] if value.get("bytes") is not None else value.get("path")
        if value is None:
            skipped.append(SkippedImage(where, f"null image in column {image_column!r}"))
            continue
        if isinstance(value, (bytes, bytearray, memoryview)):
            if len(value) == 0:
                skipped.append(SkippedImage(where, "zero-byte image"))
                continue
            source, key = io.BytesIO(bytes(value)), where
        elif isinstance(value, str):
            p = Path(value)
            p = p if p.is_absolute() else base / p
            where, key, source = f"{where} ({p})", value, p
            if not p.is_file():
                skipped.append(SkippedImage(where, "image file not found"))
                continue
            if p.stat().st_size == 0:
                skipped.append(SkippedImage(where, "zero-byte image file"))
                continue
        else:
            skipped.append(SkippedImage(where, f"image value of type {type(value).__name__}; expected bytes or "
                                               f"a path"))
            continue
        try:
            arr = decode_image(source, size)
        except Exception as e:  # any decoder failure is recorded by row, never silent
            skipped.append(SkippedImage(where, f"{type(e).__name__}: {e}"))
            continue
        images.append(arr)
        kept_captions.append(captions[row])
        keys.append(key)
    if not images:
        detail = f"; e.g. {skipped[0].source}: {skipped[0].reason}" if skipped else ""
        raise PairsError(f"no readable image in {path} ({len(skipped)} row(s) skipped){detail}; column "
                         f"{image_column!r} should hold encoded images (PNG, JPEG, ...) or paths to them")
    if skipped:
        first = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        more = f" (and {len(skipped) - 3} more, see .skipped)" if len(skipped) > 3 else ""
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) of {table.num_rows} rows in {path}: "
                      f"{first}{more}", UserWarning, stacklevel=2)
    stack = np.stack(images).astype(np.float32)[:, None]                         # (N, size, size) -> (N, 1, size, size)
    return ClipPairs(stack, kept_captions, keys, None, skipped)


__all__ = ["ClipPairs", "DigitPairs", "ImageDataError", "PairsError", "digit_pairs", "load_pairs", "make_pairs"]
