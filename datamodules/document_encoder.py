"""Encodes whole documents to the ids of a ``tokenizer.json``: with ``tokenizers`` itself, or, on the opt-in fast
path, through SentencePiece wherever that is proven identical (:mod:`tokenization.sentencepiece_equivalent`),
about twice as fast on Chinese text.

On the fast path a document whose normalized text contains an unsafe substring (or an added token such as
``</s>``, which ``tokenizers`` matches in text) goes to ``tokenizers`` itself, so every id is exactly what
``AutoTokenizer.from_pretrained(DIR)(text, add_special_tokens=False)`` gives. The others are cut at newlines
when no merge touches ``\n`` (both encoders treat such a character as a wall), and the parts are encoded in
one SentencePiece call.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenization.constants import SPACE_PIECE
from tokenization.sentencepiece_equivalent import SentencePieceEquivalent


class DocumentEncoder:
    """One per process; ``threads`` is what SentencePiece may use (1 inside a worker process)."""

    def __init__(self, backend_json: str, fast_path: SentencePieceEquivalent | None, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        self.reference = Tokenizer.from_str(backend_json)
        self.fast_path = fast_path
        self.threads = threads
        if fast_path is not None:
            import sentencepiece

            self.sentencepiece = sentencepiece.SentencePieceProcessor(model_proto=fast_path.model_proto)
            self.unsafe = fast_path.unsafe_pattern()
            self.boundary_ids = self.sentencepiece.encode(fast_path.boundary) if fast_path.boundary else []

    def encode(self, texts: Sequence[str]) -> tuple[list[list[list[int]]], int]:
        """Each text's ids as consecutive runs (joined, they are its ids), and how many texts went through
        ``tokenizers``. Runs, not one list, so that the caller copies every id once."""
        if self.fast_path is None:
            return [[ids] for ids in self._reference(texts)], len(texts)
        prefix, boundary = self.fast_path.prefix, self.fast_path.boundary
        fast: list[int] = []
        slow: list[int] = []
        parts: list[str] = []  # every fast text cut at the boundary character: shorter inputs, 10-20% faster
        counts: list[int] = []
        for i, text in enumerate(texts):
            if self.unsafe is not None and self.unsafe.search(prefix + text.replace(" ", SPACE_PIECE)):
                slow.append(i)
                continue
            fast.append(i)
            cut = (prefix + text).split(boundary) if boundary else [prefix + text]
            parts += cut
            counts.append(len(cut))
        runs: list[list[list[int]]] = [[] for _ in texts]
        encoded = iter(self.sentencepiece.encode(parts, num_threads=self.threads))
        for i, count in zip(fast, counts):
            runs[i].append(next(encoded))
            for _ in range(count - 1):
                runs[i] += (self.boundary_ids, next(encoded))
        for i, ids in zip(slow, self._reference([texts[i] for i in slow])):
            runs[i].append(ids)
        return runs, len(slow)

    def _reference(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        # the _fast variant skips character offsets, which nobody here needs: ~40% less time
        return [e.ids for e in self.reference.encode_batch_fast(list(texts), add_special_tokens=False)]
