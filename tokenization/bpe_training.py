"""``zhllama tokenizer train --kind bpe``: new BPE merges on Chinese text that continue a byte-level base's own BPE.

The corpus is normalized and pre-tokenized exactly as the base does it (its normalizer, its pre-tokenizer and
byte alphabet); only pre-tokens holding a CJK character take part. Each distinct pre-token is segmented with the
base's merges (the base's own BPE model), and standard BPE training continues from those segments: the most
frequent adjacent pair is merged, pair counts are updated incrementally in the words that held it, and so on.
New merges therefore build on the base's tokens, including the partial-UTF-8 steps a three-byte character
needs, and they rank after every base merge, so the base's merges always apply first.

A pair is skipped (never merged) when its result

- is already a token (the base reaches it another way; a second merge would reorder the base's own BPE), or
- does not force a CJK character (:func:`tokenization.byte_level_tokens.forces_cjk`): such a merge could apply
  to text without CJK characters, and that text must tokenize exactly as with the base.

The output is a JSON file: the merges in order, as byte-level token strings, and the base's fingerprint, which
``zhllama tokenizer merge`` checks.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokenization.atomic_write import atomic_file, check_output
from tokenization.byte_level_base import ByteLevelBase, load_byte_level_base
from tokenization.byte_level_tokens import forces_cjk, token_bytes
from tokenization.cjk import CJK_RUN
from tokenization.corpus import SkipReport, iter_documents
from tokenization.errors import UserError

FORMAT = "zhllama-bpe-extension/1"


@dataclass
class BpeTrainCounts:
    documents: int = 0
    chars: int = 0
    pre_tokens: int = 0
    cjk_pre_tokens: int = 0
    distinct_cjk_pre_tokens: int = 0
    base_tokens_in_cjk_pre_tokens: int = 0
    requested_merges: int = 0
    learned_merges: int = 0
    skipped_existing_token: int = 0
    skipped_not_forcing_cjk: int = 0
    stopped_below_min_frequency: bool = False
    seconds: float = 0.0
    skipped_records: dict = field(default_factory=dict)


def count_cjk_pre_tokens(
    base: ByteLevelBase, inputs: Sequence[str | Path], text_field: str, on_bad_record: str, counts: BpeTrainCounts
) -> Counter[str]:
    """Frequency of every byte-level pre-token that holds a CJK character, as the base pre-tokenizes the corpus."""
    tokenizer = base.tokenizer
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    words: Counter[str] = Counter()
    report = SkipReport()
    try:
        for document in iter_documents(inputs, text_field, on_bad_record, report):  # type: ignore[arg-type]
            text = normalizer.normalize_str(document.text) if normalizer is not None else document.text
            counts.documents += 1
            counts.chars += len(text)
            pieces = pre_tokenizer.pre_tokenize_str(text)
            counts.pre_tokens += len(pieces)
            for piece, (start, end) in pieces:
                if CJK_RUN.search(text, start, end):
                    words[piece] += 1
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    counts.skipped_records = report.as_dict()
    counts.cjk_pre_tokens = sum(words.values())
    counts.distinct_cjk_pre_tokens = len(words)
    return words


class ContinuedBpe:
    """BPE training over a word-frequency table whose words start as the base's segmentation (token ids)."""

    def __init__(self, strings: dict[int, str], words: list[list[int]], frequencies: list[int]) -> None:
        self.strings = strings  # id -> byte-level token string, base and new
        self.known = set(strings.values())
        self.words = words
        self.frequencies = frequencies
        self.next_id = max(strings) + 1
        self.pair_counts: Counter[tuple[int, int]] = Counter()
        self.where: dict[tuple[int, int], set[int]] = {}
        for index, word in enumerate(words):
            for pair in zip(word, word[1:]):
                self.pair_counts[pair] += frequencies[index]
                self.where.setdefault(pair, set()).add(index)
        self.heap = [(-count, pair) for pair, count in self.pair_counts.items()]
        heapq.heapify(self.heap)
        self.banned: set[tuple[int, int]] = set()

    def allowed(self, pair: tuple[int, int], counts: BpeTrainCounts) -> bool:
        merged = self.strings[pair[0]] + self.strings[pair[1]]
        if merged in self.known:
            counts.skipped_existing_token += 1
            return False
        if not forces_cjk(token_bytes(merged)):
            counts.skipped_not_forcing_cjk += 1
            return False
        return True

    def best_pair(self, min_frequency: int, counts: BpeTrainCounts) -> tuple[int, int] | None:
        while self.heap:
            negative, pair = heapq.heappop(self.heap)
            current = self.pair_counts.get(pair, 0)
            if current != -negative:  # stale entry: the count has changed since it was pushed
                if current > 0:
                    heapq.heappush(self.heap, (-current, pair))
                continue
            if current < min_frequency:
                counts.stopped_below_min_frequency = True
                return None
            if pair in self.banned:
                continue
            if not self.allowed(pair, counts):
                self.banned.add(pair)
                continue
            return pair
        counts.stopped_below_min_frequency = True  # no pair left at all
        return None

    def merge(self, pair: tuple[int, int]) -> int:
        """Replaces every occurrence of ``pair`` by a new token and updates the pair counts; returns its id."""
        left, right = pair
        new_id = self.next_id
        self.next_id += 1
        self.strings[new_id] = self.strings[left] + self.strings[right]
        self.known.add(self.strings[new_id])
        counts, where = self.pair_counts, self.where
        grown: set[tuple[int, int]] = set()

        def change(old: tuple[int, int], new: tuple[int, int], frequency: int, index: int) -> None:
            counts[old] -= frequency
            counts[new] += frequency
            where.setdefault(new, set()).add(index)
            grown.add(new)

        for index in where.pop(pair, ()):
            word, frequency = self.words[index], self.frequencies[index]
            merged: list[int] = []
            start, n = 0, len(word)
            while True:
                try:
                    i = word.index(left, start)
                except ValueError:
                    break
                if i + 1 < n and word[i + 1] == right:
                    merged.extend(word[start:i])
                    if merged:  # the left neighbour, possibly a token this merge just made
                        change((merged[-1], left), (merged[-1], new_id), frequency, index)
                    if i + 2 < n:
                        change((right, word[i + 2]), (new_id, word[i + 2]), frequency, index)
                    merged.append(new_id)
                    start = i + 2
                else:
                    merged.extend(word[start : i + 1])
                    start = i + 1
            if len(merged) + n - start == n:
                continue  # a stale index: an earlier merge already consumed the pair here
            merged.extend(word[start:])
            self.words[index] = merged
        del counts[pair]
        for changed in grown - {pair}:
            if counts[changed] > 0:
                heapq.heappush(self.heap, (-self.pair_counts[changed], changed))
        return new_id


def learn_merges(
    base: ByteLevelBase, words: Counter[str], num_merges: int, min_frequency: int, counts: BpeTrainCounts
) -> list[tuple[str, str]]:
    """Up to ``num_merges`` new merges, most frequent first, continuing the base's BPE on ``words``."""
    tokenizer = base.tokenizer
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    strings = {i: token for token, i in vocab.items()}
    model = tokenizer.model
    segmented = [[token.id for token in model.tokenize(word)] for word in words]
    counts.base_tokens_in_cjk_pre_tokens = sum(len(s) * f for s, f in zip(segmented, words.values()))
    bpe = ContinuedBpe(strings, segmented, list(words.values()))
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges and (pair := bpe.best_pair(min_frequency, counts)) is not None:
        merges.append((bpe.strings[pair[0]], bpe.strings[pair[1]]))
        bpe.merge(pair)
    counts.learned_merges = len(merges)
    return merges


def train_bpe_extension(
    base: str | Path | ByteLevelBase,
    inputs: Sequence[str | Path],
    output: str | Path,
    num_merges: int = 20000,
    min_frequency: int = 2,
    text_field: str = "text",
    on_bad_record: str = "error",
) -> dict:
    """Learns up to ``num_merges`` merges on the CJK pre-tokens of ``inputs`` and writes them to ``output`` (JSON)."""
    if num_merges < 1:
        raise UserError(f"--vocab_size must be at least 1 (new tokens to learn), not {num_merges}")
    if min_frequency < 1:
        raise UserError(f"--min_frequency must be at least 1, not {min_frequency}")
    started = time.monotonic()
    loaded = load_byte_level_base(base)
    check_output(Path(output), [loaded.source], directory=False)  # refuse before the work, not after
    counts = BpeTrainCounts(requested_merges=num_merges)
    words = count_cjk_pre_tokens(loaded, inputs, text_field, on_bad_record, counts)
    if not words:
        raise UserError(f"{', '.join(map(str, inputs))}: no CJK text found; pass Chinese text to learn merges from")
    merges = learn_merges(loaded, words, num_merges, min_frequency, counts)
    counts.seconds = round(time.monotonic() - started, 2)
    result = {
        "format": FORMAT,
        "base": str(loaded.source),
        "base_sha256": loaded.sha256,
        "counts": asdict(counts),
        "merges": [list(m) for m in merges],
    }
    with atomic_file(Path(output), inputs=[loaded.source]) as temporary:
        temporary.write_text(json.dumps(result, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return {"output": str(Path(output)), "base": result["base"], **asdict(counts)}
