"""``zhllama tokenizer stats``: how many tokens a tokenizer spends on a corpus, and on its Chinese characters.

Encodes with SentencePiece (the ``tokenizer.model`` a merge writes) or, for a byte-level tokenizer
(``tokenizer.json``, its directory, a ``.gguf``), with the ``tokenizers`` library, without BOS/EOS.
``byte_fallback_share`` shows how much text the vocabulary misses (the original LLaMA spends ~43% of its tokens on UTF-8 bytes of
Chinese Wikipedia), ``unreachable_pieces`` counts embedding rows no text can produce, and ``roundtrip_exact``
says whether decoding gives back every input exactly (false for normalizing models such as NFKC ones).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import sentencepiece as spm

from tokenization.corpus import SkipReport, iter_documents
from tokenization.cjk import count_cjk_chars
from tokenization.byte_level_base import load_byte_level_base
from tokenization.byte_level_tokens import token_bytes, unreachable_token_ids, whole_text
from tokenization.reachability import unreachable_piece_ids
from tokenization.sentencepiece_proto import BYTE, load_model_proto, resolve_model_file
from tokenization.tokenizer_kind import tokenizer_kind

BATCH = 256


@dataclass
class TokenCounts:
    tokens: int = 0
    byte_tokens: int = 0
    unk_tokens: int = 0
    roundtrip_failures: int = 0


class MeasuredTokenizer:
    def __init__(self, path: str | Path) -> None:
        self.file = resolve_model_file(path)
        self.proto = load_model_proto(self.file)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto.SerializeToString())
        self.byte_ids = {i for i, p in enumerate(self.proto.pieces) if p.type == BYTE}
        self.unk_id = self.sp.unk_id()
        self.counts = TokenCounts()

    def add(self, texts: list[str]) -> None:
        c = self.counts
        for text, ids in zip(texts, self.sp.encode(texts, out_type=int)):
            c.tokens += len(ids)
            c.byte_tokens += sum(i in self.byte_ids for i in ids)
            c.unk_tokens += sum(i == self.unk_id for i in ids)
            c.roundtrip_failures += self.sp.decode(ids) != text

    def vocab_size(self) -> int:
        return len(self.proto.pieces)

    def unreachable_count(self) -> int:
        return len(unreachable_piece_ids(self.proto))

    def summary(self, documents: int, chars: int, cjk_chars: int) -> dict:
        c = self.counts
        return {
            "tokenizer": str(self.file),
            "vocab_size": self.vocab_size(),
            "documents": documents,
            "chars": chars,
            "cjk_chars": cjk_chars,
            "tokens": c.tokens,
            "tokens_per_char": c.tokens / chars if chars else None,
            "tokens_per_cjk_char": c.tokens / cjk_chars if cjk_chars else None,
            "byte_fallback_share": c.byte_tokens / c.tokens if c.tokens else 0.0,
            "unk_share": c.unk_tokens / c.tokens if c.tokens else 0.0,
            "unreachable_pieces": self.unreachable_count(),
            "roundtrip_exact": c.roundtrip_failures == 0,
            "roundtrip_failures": c.roundtrip_failures,
        }


class MeasuredByteLevelTokenizer(MeasuredTokenizer):
    """The same figures for a byte-level BPE; ``byte_fallback_share`` is the share of partial-UTF-8 tokens, and a
    token is unreachable when it decodes to whole characters that do not encode back to it."""

    def __init__(self, path: str | Path) -> None:
        base = load_byte_level_base(path)
        self.file = base.source
        self.tokenizer = base.tokenizer
        self.vocab = self.tokenizer.get_vocab(with_added_tokens=False)
        self.byte_ids = {i for token, i in self.vocab.items() if whole_text(token_bytes(token)) is None}
        self.counts = TokenCounts()

    def add(self, texts: list[str]) -> None:
        c = self.counts
        for text, encoding in zip(texts, self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            c.tokens += len(encoding.ids)
            c.byte_tokens += sum(i in self.byte_ids for i in encoding.ids)
            c.roundtrip_failures += self.tokenizer.decode(encoding.ids, skip_special_tokens=False) != text

    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def unreachable_count(self) -> int:
        return len(unreachable_token_ids(self.tokenizer, self.vocab.values()))


def measured(path: str | Path) -> MeasuredTokenizer:
    if tokenizer_kind(path) == "byte_level":
        return MeasuredByteLevelTokenizer(path)
    return MeasuredTokenizer(path)


def batches(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(texts, size)):
        yield batch


def compare_stats(
    tokenizer: str | Path,
    inputs: Sequence[str | Path],
    base: str | Path | None = None,
    text_field: str = "text",
    on_bad_record: str = "error",
    max_documents: int | None = None,
) -> dict:
    """Statistics of ``tokenizer`` on the inputs; with ``base``, the base's too and the ratios tokenizer/base."""
    subjects = [measured(tokenizer)] + ([measured(base)] if base is not None else [])
    report = SkipReport()
    documents = chars = cjk_chars = 0
    texts = (d.text for d in iter_documents(inputs, text_field, on_bad_record, report))  # type: ignore[arg-type]
    for batch in batches(islice(texts, max_documents), BATCH):
        documents += len(batch)
        chars += sum(map(len, batch))
        cjk_chars += sum(map(count_cjk_chars, batch))
        for subject in subjects:
            subject.add(batch)
    result = subjects[0].summary(documents, chars, cjk_chars)
    result["skipped"] = report.as_dict()
    if base is not None:
        result["base"] = subjects[1].summary(documents, chars, cjk_chars)
        result["ratio"] = {
            key: (result[key] / result["base"][key] if result["base"][key] else None)
            for key in ("vocab_size", "tokens", "tokens_per_char", "tokens_per_cjk_char")
        }
    return result
