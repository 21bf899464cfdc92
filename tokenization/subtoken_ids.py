"""The base tokenizer's ids of the pieces an extended tokenizer's new token falls into (Fast Vocabulary Transfer).

A new token of an extended vocabulary is text the base already covers with several of its own tokens; the mean
of their embeddings is a far better start for the new row than the mean of all rows (Gee et al. 2022). Both kinds
of extension zhllama writes are split by the base's own tokenization model, on the token's piece as stored:

- byte-level BPE (SmolLM2, Qwen2): the piece is written in the byte alphabet, which is what the base's BPE model
  reads, so partial-UTF-8 tokens split into the base's byte tokens as well;
- SentencePiece-style merges (LLaMA, Mistral): the piece holds ``▁`` for a space, as the base's pieces do, and the
  base's byte fallback covers characters it has no piece for.

An added token (not a piece of the model) is encoded as text by the base.
"""

from __future__ import annotations

from typing import Any


def subtoken_ids(base_tokenizer: Any, extended_tokenizer: Any, first_new_id: int) -> list[list[int]]:
    """For each id from ``first_new_id`` to ``len(extended_tokenizer)``: the ``base_tokenizer`` ids its text
    splits into (Hugging Face fast tokenizers); empty where the base cannot split it (it has no piece for part
    of it, and no byte fallback)."""
    base_model = base_tokenizer.backend_tokenizer.model
    unknown = base_tokenizer.unk_token_id
    added = extended_tokenizer.added_tokens_decoder
    pieces = extended_tokenizer.convert_ids_to_tokens(list(range(first_new_id, len(extended_tokenizer))))
    splits: list[list[int]] = []
    for token_id, piece in zip(range(first_new_id, len(extended_tokenizer)), pieces):
        if token_id in added:
            ids = base_tokenizer.encode(added[token_id].content, add_special_tokens=False)
        else:
            ids = [token.id for token in base_model.tokenize(piece)]
        splits.append([] if not ids or unknown in ids else ids)
    return splits
