"""Fixed-length training blocks cut from the concatenation of selected documents of a flat token file.

The train and validation streams are each the concatenation, in corpus order, of their documents (every one
framed BOS ... EOS); block ``i`` is tokens ``[i * block_size, (i + 1) * block_size)`` of that stream, so a block
may span documents, and only the stream's final remainder (fewer than ``block_size`` tokens) is dropped.
Both streams index the same memory-mapped file through "runs" -- maximal stretches of consecutive selected
documents -- so the split needs no second copy of the tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


class TokenBlocks(Dataset):
    """``{"input_ids": LongTensor[block_size], "labels": LongTensor[block_size]}`` items; labels = input_ids
    (the model shifts them)."""

    def __init__(
        self, tokens_path: Path, dtype: np.dtype, doc_lengths: np.ndarray, selected: np.ndarray, block_size: int
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        self.tokens_path = Path(tokens_path)
        self.dtype = np.dtype(dtype)
        self.block_size = block_size
        offsets = np.concatenate([[0], np.cumsum(doc_lengths, dtype=np.int64)])
        edges = np.diff(np.concatenate([[0], selected.astype(np.int8), [0]]))
        first_docs, end_docs = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        self.run_file_start = offsets[first_docs]
        self.run_length = offsets[end_docs] - offsets[first_docs]
        self.run_stream_start = np.concatenate([[0], np.cumsum(self.run_length)[:-1]]).astype(np.int64)
        self.num_tokens = int(self.run_length.sum())
        self.num_blocks = self.num_tokens // block_size
        self.dropped_tail_tokens = self.num_tokens - self.num_blocks * block_size
        self._tokens: np.memmap | None = None  # opened lazily, once per process (workers included)

    def __len__(self) -> int:
        return self.num_blocks

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tokens": None}  # never pickle the mapped file into a worker

    def _mapped(self) -> np.memmap:
        if self._tokens is None:
            self._tokens = np.memmap(self.tokens_path, dtype=self.dtype, mode="r")
        return self._tokens

    def block(self, index: int) -> np.ndarray:
        if not 0 <= index < self.num_blocks:
            raise IndexError(f"block {index} out of range for {self.num_blocks} blocks")
        tokens = self._mapped()
        start, need = index * self.block_size, self.block_size
        run = int(np.searchsorted(self.run_stream_start, start, side="right")) - 1
        pieces = []
        while need:
            offset = start - int(self.run_stream_start[run])
            take = min(int(self.run_length[run]) - offset, need)
            file_start = int(self.run_file_start[run]) + offset
            pieces.append(tokens[file_start : file_start + take])
            start, need, run = start + take, need - take, run + 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.block(index).astype(np.int64))
        return {"input_ids": ids, "labels": ids.clone()}
