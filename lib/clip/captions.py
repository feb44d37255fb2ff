"""Captions for handwritten-digit images, generated from the label and from attributes measured on the image.

Three attributes are measured on each image (grey levels in [0, 1], ink bright),
with numpy only:

* **thickness**: the mean stroke width in pixels, ``2 * area / edges``: a stroke
  of length l and width w covers l*w ink pixels and has 2l + 2w pixel edges
  between ink and background, so for l >> w the ratio is about w (the
  area-over-half-perimeter width estimate of a ribbon).
* **slant**: the shear of the ink from its second central moments,
  ``-mu_xy / mu_yy`` (x to the right, y downwards; positive = the top leans to
  the right), the quantity that moment-based deskewing removes (LeCun et al. 1998,
  sec. III-A; the "deskew" of many MNIST pipelines).
* **size**: the area of the ink's bounding box as a fraction of the image.

The ink mask is ``pixel > 0.5 * max(image)`` (moments use the grey levels as
weights). Each attribute is binned into three words by the tertiles of the
training images **of the same class** (:class:`AttributeBins`), so "a thick
seven" means thick for a seven, and the words carry no class information:

    thickness: thin / regular / thick      slant: slanted left / upright / slanted right
    size: small / medium / large

Captions come from :data:`CAPTION_TEMPLATES`, which mix the class name
("seven") and the digit ("7"); :func:`split_templates` holds some templates out
for test captions. :data:`PROMPT_TEMPLATES` are the zero-shot prompts whose
normalised embeddings, averaged, give each class's embedding (Radford et al.
2021, sec. 3.1.4, "prompt ensembling").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from replearn.lib.errors import ReplearnInputError

DIGIT_NAMES: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: word of each attribute's tertile bin (low, middle, high)
THICKNESS_WORDS: tuple[str, str, str] = ("thin", "regular", "thick")
SLANT_WORDS: tuple[str, str, str] = ("slanted to the left", "upright", "slanted to the right")
SIZE_WORDS: tuple[str, str, str] = ("small", "medium", "large")
ATTRIBUTES: tuple[str, ...] = ("thickness", "slant", "size")

#: Caption templates. Fields: {name} ("seven"), {digit} ("7"), {thickness}, {slant}, {size}.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a photo of the digit {name}",
    "a {thickness} {name}",
    "a handwritten {digit} {slant}",
    "a {size} {thickness} digit {digit}",
    "the number {name} written {slant}",
    "a {size} handwritten {name}",
    "an image of a {thickness} {digit}",
    "a {size} {name} {slant} with {thickness} strokes",
    "a drawing of the number {digit}",
    "a {thickness} {size} {name} that is {slant}",
)

#: Zero-shot prompt templates for class embeddings: {name} and {digit} only.
PROMPT_TEMPLATES: tuple[str, ...] = (
    "a photo of the digit {name}",
    "the number {digit}",
    "a handwritten {name}",
    "the digit {digit}",
    "a drawing of the number {name}",
    "an image of a {digit}",
)


# --------------------------------------------------------------------------- measuring


def _as_stack(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]                                                             # (N, 1, H, W) -> (N, H, W)
    if x.ndim != 3:
        raise ReplearnInputError(f"attributes need grayscale images (N, H, W) or (N, 1, H, W), got shape "
                                 f"{np.shape(images)}")
    return x


def measure_attributes(images: np.ndarray) -> dict[str, np.ndarray]:
    """Stroke thickness, slant and size of each image (formulas in the module docstring).

    Args:
        images: float (N, 1, H, W) or (N, H, W), ink bright (>= 0); any size.

    Returns:
        ``{"thickness": (N,), "slant": (N,), "size": (N,)}`` float64 arrays:
        thickness in pixels (>= 0), slant unbounded (0 = upright, > 0 leans right),
        size in [0, 1]. A blank image gives 0 for all three.
    """
    x = _as_stack(images)
    N, H, W = x.shape
    out = {a: np.zeros(N) for a in ATTRIBUTES}
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64)
    for i in range(N):
        img = np.clip(x[i], 0.0, None)
        peak = img.max()
        if peak <= 0:
            continue
        mask = img > 0.5 * peak
        m = np.pad(mask, 1).astype(np.int8)                                     # the frame counts as background
        edges = np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()
        out["thickness"][i] = 2.0 * mask.sum() / edges
        w = img / img.sum()
        cy, cx = (w * ys).sum(), (w * xs).sum()
        mu_yy = (w * (ys - cy) ** 2).sum()
        mu_xy = (w * (xs - cx) * (ys - cy)).sum()
        out["slant"][i] = -mu_xy / mu_yy if mu_yy > 1e-12 else 0.0
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        out["size"][i] = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / (H * W)
    return out


@dataclass(frozen=True)
class AttributeBins:
    """Tertile edges of each attribute per class, fitted on training images.

    Attributes:
        edges: ``{attribute: ((lo, hi) per class)}``; a value < lo is bin 0, > hi bin 2, else 1.
    """

    edges: dict

    @classmethod
    def fit(cls, attributes: dict[str, np.ndarray], labels: np.ndarray) -> "AttributeBins":
        """Tertiles (1/3, 2/3 quantiles) of each attribute among the images of each class.

        Args:
            attributes: output of :func:`measure_attributes` on the training images.
            labels: (N,) int class ids in 0..C-1.

        Raises:
            ReplearnInputError: a class id in 0..max(labels) has no image.
        """
        y = np.asarray(labels, dtype=np.int64)
        C = int(y.max()) + 1 if len(y) else 0
        edges = {}
        for a in ATTRIBUTES:
            per_class = []
            for c in range(C):
                v = attributes[a][y == c]
                if len(v) == 0:
                    raise ReplearnInputError(f"AttributeBins.fit: class {c} has no training image; every class "
                                             f"0..{C - 1} needs at least one to fit its attribute tertiles")
                lo, hi = np.quantile(v, [1 / 3, 2 / 3])
                per_class.append((float(lo), float(hi)))
            edges[a] = tuple(per_class)
        return cls(edges)

    def bin(self, attributes: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, np.ndarray]:
        """Bin index 0, 1 or 2 of each attribute of each image: ``{attribute: int64 (N,)}``."""
        y = np.asarray(labels, dtype=np.int64)
        out = {}
        for a in ATTRIBUTES:
            e = np.asarray(self.edges[a], dtype=np.float64)                      # (C, 2)
            if len(y) and y.max() >= len(e):
                raise ReplearnInputError(f"AttributeBins: class {int(y.max())} was not seen when fitting "
                                         f"({len(e)} classes)")
            v = attributes[a]
            out[a] = np.where(v < e[y, 0], 0, np.where(v > e[y, 1], 2, 1)).astype(np.int64)
        return out

    def to_dict(self) -> dict:
        return {a: [list(p) for p in pairs] for a, pairs in self.edges.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "AttributeBins":
        return cls({a: tuple(tuple(float(v) for v in p) for p in pairs) for a, pairs in d.items()})


def attribute_words(bins: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """The words of each image's bins: ``[{"thickness": "thin", "slant": "upright", "size": "large"}, ...]``."""
    words = {"thickness": THICKNESS_WORDS, "slant": SLANT_WORDS, "size": SIZE_WORDS}
    n = len(bins["thickness"])
    return [{a: words[a][int(bins[a][i])] for a in ATTRIBUTES} for i in range(n)]


# --------------------------------------------------------------------------- templates


def split_templates(templates: Sequence[str] = CAPTION_TEMPLATES, n_test: int = 3,
                    seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Deterministic split of ``templates`` into (train, test), ``n_test`` held out, chosen by ``seed``.

    The first template ("a photo of the digit {name}") always stays in train, so
    training sees the plainest caption of each class. Order within each part
    follows ``templates``.

    Raises:
        ReplearnInputError: ``n_test`` not in 0..len(templates)-1.
    """
    n = len(templates)
    if not 0 <= n_test <= n - 1:
        raise ReplearnInputError(f"n_test_templates={n_test}: must be in 0..{n - 1} so at least one template "
                                 f"is left to train on ({n} templates)")
    order = np.random.default_rng(np.random.SeedSequence([seed, 5])).permutation(np.arange(1, n))
    test = set(order[:n_test].tolist())
    return (tuple(t for i, t in enumerate(templates) if i not in test),
            tuple(t for i, t in enumerate(templates) if i in test))


_ARTICLE = re.compile(r"\ba (?=(?:[aeiou]|8\b|eight|eleven|18\b))")


def fill_template(template: str, label: int, words: dict[str, str] | None = None) -> str:
    """One caption: ``template`` with {name}, {digit} of class ``label`` (0..9) and the attribute words.

    "a" becomes "an" before a vowel sound ("an eight", "an 8").
    """
    fields = {"name": DIGIT_NAMES[int(label)], "digit": str(int(label))}
    if words:
        fields.update(words)
    return _ARTICLE.sub("an ", template.format(**fields))


def generate_captions(labels: np.ndarray, words: list[dict[str, str]], templates: Sequence[str],
                      rng: np.random.Generator) -> list[str]:
    """One caption per image from a template drawn uniformly from ``templates``.

    Args:
        labels: (N,) digit classes 0..9.
        words: N dicts from :func:`attribute_words`.
        templates: templates to draw from (e.g. the train part of :func:`split_templates`).
        rng: numpy generator (the draw is reproducible from its seed).

    Returns:
        N caption strings.
    """
    if not templates:
        raise ReplearnInputError("generate_captions needs at least one template")
    pick = rng.integers(0, len(templates), size=len(labels))
    return [fill_template(templates[int(t)], int(y), w) for t, y, w in zip(pick, labels, words)]


def all_captions(templates: Sequence[str], classes: Sequence[int] = tuple(range(10))) -> list[str]:
    """Every caption the templates can produce for ``classes`` (all attribute combinations), sorted, unique.

    Used to build a text vocabulary or to precompute sentence embeddings for
    every possible training caption.
    """
    out = set()
    for t in templates:
        for y in classes:
            for th in THICKNESS_WORDS:
                for sl in SLANT_WORDS:
                    for sz in SIZE_WORDS:
                        out.add(fill_template(t, y, {"thickness": th, "slant": sl, "size": sz}))
    return sorted(out)


def class_prompts(templates: Sequence[str] = PROMPT_TEMPLATES, classes: Sequence[int] = tuple(range(10))
                  ) -> list[list[str]]:
    """Zero-shot prompts: for each class, the templates filled with its name and digit. (C, n_templates) strings."""
    return [[fill_template(t, int(c)) for t in templates] for c in classes]
