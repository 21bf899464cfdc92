"""Seeded train/validation split by document, identical whatever the number of worker processes.

Document ``i`` (its position among the kept documents, in corpus order) gets a pseudo-random key
from ``(seed, i)`` alone, and the validation set is the ``k`` documents with the smallest keys: exact in size,
reproducible, and the same for any ``num_proc``.
"""

from __future__ import annotations

import numpy as np

from tokenization.errors import UserError

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each element (SplitMix64's finalizer); wraps modulo 2**64 on purpose."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def validation_count(num_documents: int, val_fraction: float, val_documents: int | None) -> int:
    """How many documents go to validation: ``val_documents`` if given, else ``round(val_fraction * n)``
    (at least one when the fraction is positive). At least one document always stays in training."""
    if val_documents is not None:
        if val_documents < 0:
            raise UserError(f"val_documents must be >= 0, got {val_documents}")
        k = val_documents
    else:
        if not 0.0 <= val_fraction < 1.0:
            raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
        k = max(1, round(val_fraction * num_documents)) if val_fraction > 0 else 0
    if num_documents and k >= num_documents:
        raise UserError(
            f"the validation split asks for {k} of {num_documents} documents, leaving none for training; "
            "lower val_fraction / val_documents or add documents"
        )
    return k


def validation_mask(num_documents: int, seed: int, val_fraction: float, val_documents: int | None) -> np.ndarray:
    """Boolean array over the kept documents: True where the document belongs to validation."""
    k = validation_count(num_documents, val_fraction, val_documents)
    mask = np.zeros(num_documents, dtype=bool)
    if k:
        seed_key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        keys = _splitmix64(np.arange(num_documents, dtype=np.uint64) ^ seed_key)
        mask[np.argsort(keys, kind="stable")[:k]] = True
    return mask
