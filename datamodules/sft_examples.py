"""Turns Alpaca records into token sequences with the prompt masked out of the loss.

Layout (Chinese-Alpaca's): ``[BOS] + tokens(prompt) + tokens(output) + [EOS]``, the output tokenized on its
own without special tokens, labels ``-100`` on every prompt token. An example that is too long loses tokens from the end of its instruction first, keeping the template's head and response marker;
only if that is not enough is the output shortened, and its EOS is always kept. An example with no label left
is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datamodules.alpaca_records import AlpacaRecord
from tokenization.constants import IGNORE_INDEX
from tokenization.corpus import SkipReport
from datamodules.prompt_templates import PromptTemplate
from tokenization.errors import UserError


@dataclass(frozen=True)
class SFTExample:
    input_ids: tuple[int, ...]
    prompt_length: int  # tokens (BOS included) that carry label -100

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def labels(self) -> list[int]:
        return [IGNORE_INDEX] * self.prompt_length + list(self.input_ids[self.prompt_length :])


@dataclass
class TruncationStats:
    """How many kept examples were shortened, and where."""

    prompt_truncated: int = 0
    output_truncated: int = 0


def special_ids(tokenizer) -> tuple[int, int]:
    """(BOS, EOS) ids; both are required by the layout."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is None or eos is None:
        raise UserError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no "
            f"{'BOS' if bos is None else 'EOS'} token; SFT examples are [BOS] prompt output [EOS]"
        )
    return bos, eos


def encode_records(
    records: Iterable[AlpacaRecord],
    tokenizer,
    template: PromptTemplate,
    max_seq_length: int,
    report: SkipReport,
    stats: TruncationStats | None = None,
    chunk_size: int = 1024,
) -> list[SFTExample]:
    """Tokenizes records in chunks (the fast tokenizer's batch call), truncating and counting as it goes."""
    if max_seq_length < 2:
        raise UserError(f"max_seq_length must be at least 2 (BOS + EOS), not {max_seq_length}")
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(
            "SFT encoding needs a fast (Rust) tokenizer for character offsets; load it with "
            "AutoTokenizer.from_pretrained(DIR) (the default), not use_fast=False"
        )
    bos, eos = special_ids(tokenizer)
    stats = stats if stats is not None else TruncationStats()
    examples: list[SFTExample] = []
    chunk: list[AlpacaRecord] = []

    def flush() -> None:
        parts = [template.split(r.prompt_instruction) for r in chunk]
        sources = tokenizer(["".join(p) for p in parts], add_special_tokens=False, return_offsets_mapping=True)
        targets = tokenizer([r.output for r in chunk], add_special_tokens=False)
        for record, (head, content, _), ids, offsets, target in zip(
            chunk, parts, sources["input_ids"], sources["offset_mapping"], targets["input_ids"]
        ):
            example = _fit(ids, offsets, len(head), len(head) + len(content), target, bos, eos, max_seq_length, stats)
            if example is None:
                report.add("no_label_after_truncation", record.path, record.line,
                           f"record {record.index}: the prompt's fixed part alone fills max_seq_length={max_seq_length}")
            else:
                examples.append(example)
        chunk.clear()

    for record in records:
        chunk.append(record)
        if len(chunk) >= chunk_size:
            flush()
    if chunk:
        flush()
    return examples


def _fit(
    ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    content_start: int,
    content_end: int,
    target: Sequence[int],
    bos: int,
    eos: int,
    max_seq_length: int,
    stats: TruncationStats,
) -> SFTExample | None:
    target = [*target, eos]
    excess = 1 + len(ids) + len(target) - max_seq_length
    if excess > 0:
        content = [i for i, (start, _) in enumerate(offsets) if content_start <= start < content_end]
        cut = set(content[len(content) - min(excess, len(content)) :])
        if cut:
            ids = [t for i, t in enumerate(ids) if i not in cut]
            stats.prompt_truncated += 1
        room = max_seq_length - 1 - len(ids)
        if room < 1:
            return None
        if len(target) > room:
            target = [*target[: room - 1], eos]
            stats.output_truncated += 1
    source = [bos, *ids]
    return SFTExample(tuple(source + target), len(source))
