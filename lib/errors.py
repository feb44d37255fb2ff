"""Errors raised by replearn.lib for bad input.

Every error message names the offending file (and row, where there is one) and
says how to fix it. All derive from ``ValueError`` so callers that only know
the standard library still catch them.
"""


class ReplearnInputError(ValueError):
    """Base class: the user's input cannot be used as given."""


class CorpusError(ReplearnInputError):
    """A corpus is missing, empty, unreadable, or lacks the named text column."""


class VocabularyError(ReplearnInputError):
    """A vocabulary is empty after pruning, or a word is not in it."""


class EmbeddingsError(ReplearnInputError):
    """Vectors cannot be exported or indexed: NaN/Inf, wrong dimension, duplicate or null rows."""


class TrainingError(ReplearnInputError):
    """Training cannot go on with these settings: the loss became NaN/Inf or the embeddings collapsed.

    ``history`` holds the per-epoch logs recorded before the stop (the failing
    epoch included when it finished), so a caller can still log or plot them.
    """

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = list(history or [])

    def __reduce__(self):  # keep ``history`` through pickling (process pools, Prefect results)
        return (type(self), (self.args[0] if self.args else "", self.history))
