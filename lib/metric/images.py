"""Labelled grayscale image datasets for metric learning, as numpy arrays.

Every loader returns an :class:`ImageDataset`:

* ``images``: float32 (N, 1, H, W), values in [0, 1] (0 = black). Use
  ``torch.from_numpy(ds.images)`` for a zero-copy tensor.
* ``labels``: int64 (N,), class ids 0..C-1 given by ``ds.classes`` (a
  :class:`LabelEncoder` that keeps the class names).
* ``keys``: one string per image naming where it came from (a path, or
  ``<file>#row=<i>``), usable as the ``key`` column of the embeddings table.
* ``skipped``: the inputs that could not be read, each with its reason. Loaders
  never drop an input silently: every unreadable file or row is listed there and
  a :class:`UserWarning` gives the count and the first few paths.

Sources: scikit-learn's bundled 8x8 digits (Alpaydin & Kaynak 1998, UCI "Optical
Recognition of Handwritten Digits"), the MNIST test set in IDX format (LeCun et
al. 1998), a folder of images with one sub-folder per class (the torchvision
``ImageFolder`` layout), or a Parquet file with an image column (bytes, a path,
or the Hugging Face ``datasets`` Image struct ``{bytes, path}``).

:func:`split_by_classes` gives the usual metric-learning protocol (Musgrave et
al. 2020, "A Metric Learning Reality Check", sec. 4): train on some classes,
evaluate retrieval on the disjoint remaining classes.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replearn.lib.errors import ReplearnInputError


class ImageDataError(ReplearnInputError):
    """An image source is missing, holds no readable image, or lacks a named column."""


# --------------------------------------------------------------------------- labels


def _natural_key(name: str) -> tuple:
    """Sort integers numerically and before other names: "2" < "10" < "cat"."""
    return (0, int(name), "") if re.fullmatch(r"[+-]?\d+", name) else (1, 0, name)


@dataclass(frozen=True)
class LabelEncoder:
    """Maps class names (strings) to ids 0..C-1 and back.

    ``names[i]`` is the name of class id ``i``. :meth:`fit` orders names
    "naturally": integer-looking names numerically first ("0", "1", ..., "10"),
    then the others alphabetically, so the digit folders "0".."9" get ids 0..9.
    Labels that are not strings are converted with ``str`` first.
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ReplearnInputError(f"LabelEncoder: duplicate class names {dup[:5]}; names must be unique")
        object.__setattr__(self, "names", names)

    @classmethod
    def fit(cls, labels: Iterable) -> "LabelEncoder":
        """Encoder over the distinct values of ``labels`` (any values; compared as ``str``)."""
        return cls(tuple(sorted({str(v) for v in labels}, key=_natural_key)))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Iterable) -> np.ndarray:
        """int64 (N,) ids of ``labels``.

        Raises:
            ReplearnInputError: a label that is not one of ``names`` (the message names it).
        """
        index = {n: i for i, n in enumerate(self.names)}
        out = []
        for row, v in enumerate(labels):
            try:
                out.append(index[str(v)])
            except KeyError:
                raise ReplearnInputError(f"label {v!r} (item {row}) is not a known class; known: "
                                         f"{list(self.names[:10])}{' ...' if len(self) > 10 else ''}") from None
        return np.asarray(out, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Class names of ids in 0..C-1 (IndexError for an id out of range)."""
        return [self.names[int(i)] for i in ids]

    def to_dict(self) -> dict:
        """``{"names": [...]}``, JSON-serialisable, for checkpoints and exports."""
        return {"names": list(self.names)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelEncoder":
        return cls(tuple(d["names"]))


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class SkippedImage:
    """An input that was not loaded: ``source`` is its path (or ``<file>#row=<i>``), ``reason`` why."""

    source: str
    reason: str


@dataclass
class ImageDataset:
    """Images, labels and where they came from (see the module docstring for every field).

    Attributes:
        images: float32 (N, 1, H, W) in [0, 1].
        labels: int64 (N,) in 0..len(classes)-1.
        classes: the :class:`LabelEncoder` of the labels.
        keys: N strings, the source of each image.
        skipped: inputs that could not be read.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: LabelEncoder
    keys: list[str]
    skipped: list[SkippedImage] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[1] != 1 or len(self.labels) != n or len(self.keys) != n:
            raise ValueError(f"ImageDataset needs images (N, 1, H, W), N labels and N keys; got images "
                             f"{self.images.shape}, {len(self.labels)} labels, {len(self.keys)} keys")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    @property
    def label_names(self) -> list[str]:
        """The class name of every image, (N,) strings."""
        return self.classes.decode(self.labels)

    def subset(self, index: np.ndarray) -> "ImageDataset":
        """The images at ``index`` (int array), same classes; ``skipped`` is not carried over."""
        index = np.asarray(index, dtype=np.int64)
        return ImageDataset(self.images[index], self.labels[index], self.classes,
                            [self.keys[i] for i in index], [])


def _report_skipped(skipped: list[SkippedImage], where: str) -> None:
    if skipped:
        first = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        more = f" (and {len(skipped) - 3} more, see .skipped)" if len(skipped) > 3 else ""
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {where}: {first}{more}", UserWarning,
                      stacklevel=4)  # points at the caller of the loader


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int (pixels per side), got {size!r}")


# --------------------------------------------------------------------------- bundled sets


def load_digits_8x8() -> ImageDataset:
    """scikit-learn's bundled handwritten digits: 1,797 images of 8x8, 10 classes.

    Returns:
        images float32 (1797, 1, 8, 8) in [0, 1] (grey levels 0..16 divided by 16),
        labels int64 in 0..9 with class names "0".."9", keys ``digits/<i>``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (np.asarray(d.images, dtype=np.float32) / 16.0)[:, None, :, :]  # (N, 8, 8) -> (N, 1, 8, 8)
    classes = LabelEncoder(tuple(str(i) for i in range(10)))
    return ImageDataset(images, np.asarray(d.target, dtype=np.int64), classes,
                        [f"digits/{i}" for i in range(len(images))])


def load_mnist_test(folder: Path | str) -> ImageDataset:
    """The MNIST test set (10,000 digits of 28x28) from ``<folder>/t10k-{images-idx3,labels-idx1}-ubyte[.gz]``.

    Returns:
        images float32 (10000, 1, 28, 28) in [0, 1] (grey levels 0..255 divided by 255;
        white digit on black), labels int64 in 0..9, keys ``mnist-t10k/<i>``.

    Raises:
        ImageDataError: the folder does not exist.
        ReplearnInputError: a missing, truncated or malformed IDX file (from ``idx.load_mnist``).
    """
    from replearn.lib.metric.idx import load_mnist

    folder = Path(folder)
    if not folder.is_dir():
        raise ImageDataError(f"MNIST folder {folder} not found; it should hold t10k-images-idx3-ubyte.gz and "
                             f"t10k-labels-idx1-ubyte.gz (the original IDX files)")
    raw, labels = load_mnist(folder, "t10k")
    images = (raw.astype(np.float32) / 255.0)[:, None, :, :]  # (N, 28, 28) -> (N, 1, 28, 28)
    classes = LabelEncoder(tuple(str(i) for i in range(10)))
    return ImageDataset(images, labels.astype(np.int64), classes, [f"mnist-t10k/{i}" for i in range(len(images))])


# --------------------------------------------------------------------------- decoding


def decode_image(source, size: int) -> np.ndarray:
    """One image (a path or a binary file object) -> float32 (size, size) in [0, 1].

    Colour is converted to luminance (Pillow's ITU-R 601-2 ``L`` mode), alpha is
    dropped, 16-bit grey is scaled by 1/65535, 32-bit integer or float grey is
    taken as 0..255 when it fits that range, else divided by the image's maximum,
    and the image is stretched to
    ``size x size`` with bilinear (antialiased) resampling. Raises whatever
    Pillow raises for an unreadable input.
    """
    from PIL import Image

    with Image.open(source) as img:
        img.load()  # decode now, so a truncated file fails here
        if img.mode.startswith("I;16") or img.mode in ("I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            if img.mode.startswith("I;16"):
                hi = 65535.0
            else:  # 32-bit int or float: 8-bit range if it fits, else scale by the maximum
                hi = 255.0 if arr.max(initial=0) <= 255 else float(arr.max())
            # a 2-d float32 array becomes a mode "F" image, which Pillow resizes without quantising
            out = Image.fromarray((np.clip(arr, 0, hi) / hi).astype(np.float32))
            out = out.resize((size, size), Image.Resampling.BILINEAR)
            return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
        gray = img.convert("L")
        if gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.float32) / 255.0


def _try_decode(source, size: int, name: str, skipped: list[SkippedImage]) -> np.ndarray | None:
    try:
        return decode_image(source, size)
    except Exception as e:  # any decoder failure is recorded with its reason, never silent
        msg = str(e).replace(repr(source), "the bytes") if isinstance(source, io.BytesIO) else str(e)
        skipped.append(SkippedImage(name, f"{type(e).__name__}: {msg}"))
        return None


def _assemble(images: list[np.ndarray], names: list[str], keys: list[str], skipped: list[SkippedImage],
              size: int, where: str, fix: str) -> ImageDataset:
    if not images:
        detail = ""
        if skipped:
            detail = f"; all {len(skipped)} input(s) were unreadable, e.g. {skipped[0].source}: {skipped[0].reason}"
        raise ImageDataError(f"no images loaded from {where}{detail}; {fix}")
    _report_skipped(skipped, where)
    classes = LabelEncoder.fit(names)
    stack = np.stack(images).astype(np.float32, copy=False)[:, None, :, :]  # (N, size, size) -> (N, 1, size, size)
    return ImageDataset(stack, classes.encode(names), classes, keys, skipped)


# --------------------------------------------------------------------------- folder


def load_image_folder(root: Path | str, size: int = 28) -> ImageDataset:
    """Images under ``root/<class name>/...``: the class is the top-level sub-folder's name.

    Every file below a class folder (nested folders included) is tried with
    Pillow, whatever its extension; any format Pillow reads works, at any size
    and mode. Each image becomes grayscale and is resized (stretched, aspect
    ratio not kept) to ``size x size``. Hidden entries (names starting with
    ".") are ignored; files directly in ``root`` belong to no class and are
    listed in ``skipped``, as are unreadable files (corrupt, truncated, not an
    image). Files are read in sorted path order, so the result is deterministic.

    Args:
        root: the folder holding one sub-folder per class.
        size: output side length in pixels, >= 1 (28 matches MNIST).

    Returns:
        :class:`ImageDataset` with keys = the file paths relative to ``root``
        (POSIX form) and ``skipped`` = the unreadable files.

    Raises:
        ImageDataError: ``root`` missing or not a folder, or no readable image in it.
    """
    _check_size(size)
    root = Path(root)
    if not root.exists():
        raise ImageDataError(f"image folder {root} not found; pass a folder laid out as <root>/<class>/<image>")
    if not root.is_dir():
        raise ImageDataError(f"{root} is a file, not a folder; pass a folder laid out as <root>/<class>/<image> "
                             f"(for a Parquet file use load_image_parquet)")
    images: list[np.ndarray] = []
    names: list[str] = []
    keys: list[str] = []
    skipped: list[SkippedImage] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            skipped.append(SkippedImage(str(entry), "file directly in the root folder has no class; "
                                                    "move it into a class sub-folder"))
            continue
        if not entry.is_dir():
            continue
        for path in sorted(p for p in entry.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)):
            arr = _try_decode(path, size, str(path), skipped)
            if arr is not None:
                images.append(arr)
                names.append(entry.name)
                keys.append(path.relative_to(root).as_posix())
    return _assemble(images, names, keys, skipped, size, str(root),
                     "expected <root>/<class name>/<image files> with images Pillow can read")


# --------------------------------------------------------------------------- parquet


def load_image_parquet(path: Path | str, image_column: str, label_column: str, size: int = 28,
                       batch_rows: int = 1024) -> ImageDataset:
    """Images and labels from a Parquet file (or a folder of Parquet files).

    The image column may hold, per row: encoded image bytes (``binary``), a path
    (``string``; a relative path is resolved against the Parquet file's folder),
    or the Hugging Face ``datasets`` Image struct ``{bytes, path}`` (bytes used
    when present). Labels may be of any type; they are converted with ``str``
    and encoded with :class:`LabelEncoder` (natural order). Rows are streamed in
    batches of ``batch_rows``, so only the decoded images are held in memory.

    Rows with a null image or label, a missing image file, or undecodable bytes
    are listed in ``skipped`` as ``<file>#row=<i>`` (with the image path, if
    any) and a warning gives their count.

    Args:
        path: Parquet file or folder of Parquet files.
        image_column, label_column: column names.
        size: output side length in pixels, >= 1.
        batch_rows: rows read per batch, >= 1.

    Returns:
        :class:`ImageDataset`; keys are the image paths where the column holds
        paths, else ``<file>#row=<i>`` (i counts rows from 0 across the dataset).

    Raises:
        ImageDataError: missing file, unreadable Parquet, a missing column (the
            message lists the columns present), or no readable image.
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    _check_size(size)
    path = Path(path)
    if not path.exists():
        raise ImageDataError(f"Parquet file {path} not found; pass the path of a Parquet file or folder of them")
    try:
        ds = pads.dataset(str(path), format="parquet")
        schema = ds.schema
    except (OSError, pa.ArrowInvalid) as e:
        raise ImageDataError(f"cannot read {path} as Parquet: {e}") from None
    missing = [c for c in (image_column, label_column) if c not in schema.names]
    if missing:
        raise ImageDataError(f"{path} has no column {missing[0]!r}; its columns are {schema.names}; "
                             f"pass image_column= and label_column= from those")
    base = path if path.is_dir() else path.parent
    images: list[np.ndarray] = []
    names: list[str] = []
    keys: list[str] = []
    skipped: list[SkippedImage] = []
    row = 0
    try:
        batches = ds.to_batches(columns=[image_column, label_column], batch_size=batch_rows)
        for batch in batches:
            for img_val, label in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                where = f"{path}#row={row}"
                row += 1
                if isinstance(img_val, dict):  # Hugging Face Image struct {bytes, path}
                    img_val = img_val.get("bytes") or img_val.get("path")
                if img_val is None:
                    skipped.append(SkippedImage(where, f"null image in column {image_column!r}"))
                    continue
                if label is None:
                    skipped.append(SkippedImage(where, f"null label in column {label_column!r}"))
                    continue
                if isinstance(img_val, (bytes, bytearray, memoryview)):
                    source, key = io.BytesIO(bytes(img_val)), where
                elif isinstance(img_val, str):
                    p = Path(img_val)
                    p = p if p.is_absolute() else base / p
                    source, key, where = p, str(img_val), f"{where} ({p})"
                    if not p.is_file():
                        skipped.append(SkippedImage(where, "image file not found"))
                        continue
                else:
                    skipped.append(SkippedImage(where, f"image value of type {type(img_val).__name__}; "
                                                       f"expected bytes or a path string"))
                    continue
                arr = _try_decode(source, size, where, skipped)
                if arr is not None:
                    images.append(arr)
                    names.append(str(label))
                    keys.append(key)
    except (OSError, pa.ArrowInvalid) as e:
        raise ImageDataError(f"cannot read {path} near row {row}: {e}") from None
    return _assemble(images, names, keys, skipped, size, str(path),
                     f"column {image_column!r} should hold encoded images (PNG, JPEG, ...) or paths to them")


# --------------------------------------------------------------------------- protocol


def split_by_classes(labels: Sequence | np.ndarray, train_classes: int | Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Indices for the disjoint-class metric-learning protocol.

    Args:
        labels: (N,) class labels (ids or names).
        train_classes: the classes to train on, either a collection of label
            values, or an int n meaning the n smallest distinct labels (in
            sorted order; for CUB-200 this gives the usual first 100 / last 100).

    Returns:
        (train_idx, test_idx): int64 arrays, ascending, partitioning 0..N-1;
        every item of a train class is in ``train_idx``, every other item in
        ``test_idx``.

    Raises:
        ReplearnInputError: no labels, a train class absent from ``labels``, or
            a split that leaves no train class or no evaluation class.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ReplearnInputError(f"split_by_classes needs a non-empty 1-d label array, got shape {y.shape}")
    distinct = np.unique(y)
    if isinstance(train_classes, (int, np.integer)):
        n = int(train_classes)
        if not 1 <= n < len(distinct):
            raise ReplearnInputError(f"split_by_classes: train_classes={n} but there are {len(distinct)} classes; "
                                     f"use 1..{len(distinct) - 1} so both sides have a class")
        chosen = distinct[:n]
    else:
        wanted = list(train_classes)
        if not wanted:
            raise ReplearnInputError("split_by_classes: train_classes is empty; name at least one class")
        present = set(distinct.tolist())
        absent = [c for c in wanted if c not in present]
        if absent:
            raise ReplearnInputError(f"split_by_classes: train classes {absent[:5]} do not occur in labels "
                                     f"(present: {distinct.tolist()[:10]})")
        chosen = np.asarray(sorted(set(wanted)))
        if len(chosen) == len(distinct):
            raise ReplearnInputError("split_by_classes: every class is a train class, none is left to evaluate on; "
                                     "leave some classes out of train_classes")
    is_train = np.isin(y, chosen)
    return np.flatnonzero(is_train).astype(np.int64), np.flatnonzero(~is_train).astype(np.int64)
