"""Reader for the IDX format of MNIST (LeCun et al.), plain or gzip-compressed.

An IDX file is a big-endian header — two zero bytes, a type code, the number
of dimensions n — then n uint32 sizes, then the data in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from replearn.lib.errors import ReplearnInputError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array.

    Returns:
        Array of the file's shape, e.g. uint8 (N, 28, 28) images or uint8 (N,) labels;
        multi-byte types are converted to native byte order.

    Raises:
        ReplearnInputError: missing file, bad magic number, unknown type code, or
            a data section whose length does not match the header.
    """
    path = Path(path)
    if not path.exists():
        raise ReplearnInputError(f"IDX file {path} not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ReplearnInputError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ReplearnInputError(f"{path} is not an IDX file (magic bytes {data[:4]!r}); expected 00 00 <type> <ndim>")
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ReplearnInputError(f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
                                 f"{len(data) - header} data bytes; the file is truncated or corrupt")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def load_mnist(folder: Path | str, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels from ``<folder>/<split>-images-idx3-ubyte[.gz]`` and the labels file.

    Returns:
        (images uint8 (N, 28, 28) in 0..255, labels int64 (N,) in 0..9).
    """
    folder = Path(folder)

    def find(stem: str) -> Path:
        for name in (f"{stem}.gz", stem):
            if (folder / name).exists():
                return folder / name
        raise ReplearnInputError(f"MNIST file {folder / stem}[.gz] not found")

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    if len(images) != len(labels):
        raise ReplearnInputError(f"MNIST in {folder}: {len(images)} images but {len(labels)} labels")
    return images, labels
