"""Score documents with a causal LM: every token once, a sliding window over long documents, nats per token.

A document is encoded without special tokens and one prefix token is put before it (the tokenizer's BOS, else its
EOS, as lm-evaluation-harness does): the prefix is context only, and the document's first token is scored given
it. The first window holds up to ``window`` tokens and scores all of them; each next window starts ``stride``
tokens later and scores only tokens no window has scored yet, so each of those sees at least ``window - stride``
tokens of context. Windows of several documents run in one batch, right-padded (causal attention never looks
right), and the head is applied a chunk of positions at a time so the ``[tokens, vocab]`` logits never exist.

Totals are charged to the text, not to the tokens: bytes are the document's UTF-8 bytes, characters its code
points. The CJK split charges each token's nats to the characters its offsets cover, in proportion (a byte token
of a CJK character counts for that character); CJK characters are those of :mod:`tokenization.cjk`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from tokenization.cjk import CJK_RUN
from tokenization.errors import UserError

#: Positions whose logits are computed at once: bounds the fp32 logits to ``HEAD_CHUNK x vocab``.
HEAD_CHUNK = 1024


@dataclass
class ScoreTotals:
    """Sums over scored documents; ``cjk_*`` is the CJK part, the rest is the total minus it."""

    documents: int = 0
    chars: int = 0
    bytes: int = 0
    tokens: float = 0.0
    nats: float = 0.0
    cjk_chars: int = 0
    cjk_bytes: int = 0
    cjk_tokens: float = 0.0
    cjk_nats: float = 0.0

    def add(self, other: ScoreTotals) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def summary(self) -> dict[str, object]:
        """The figures: bits per character and per byte, tokens per character, token perplexity; overall, CJK
        and the rest."""
        parts = {
            "all": (self.chars, self.bytes, self.tokens, self.nats),
            "cjk": (self.cjk_chars, self.cjk_bytes, self.cjk_tokens, self.cjk_nats),
            "other": (self.chars - self.cjk_chars, self.bytes - self.cjk_bytes, self.tokens - self.cjk_tokens,
                      self.nats - self.cjk_nats),
        }
        result: dict[str, object] = {"documents": self.documents}
        for name, (chars, n_bytes, tokens, nats) in parts.items():
            figures = group_figures(chars, n_bytes, tokens, nats)
            if name == "all":
                result.update(figures)
            else:
                result[name] = figures
        return result


def group_figures(chars: int, n_bytes: int, tokens: float, nats: float) -> dict[str, float | int | None]:
    """The figures of one part of the text; ``None`` where the part is empty."""
    return {
        "chars": chars,
        "bytes": n_bytes,
        "tokens": round(tokens, 6),
        "bits_per_char": nats / (math.log(2) * chars) if chars else None,
        "bits_per_byte": nats / (math.log(2) * n_bytes) if n_bytes else None,
        "tokens_per_char": tokens / chars if chars else None,
        "token_perplexity": math.exp(nats / tokens) if tokens > 0.5 else None,
    }


@dataclass(frozen=True)
class Window:
    """Input positions ``[begin, end)`` of a document's sequence, scoring targets ``[first_target, end)``."""

    begin: int
    end: int
    first_target: int


def sliding_windows(length: int, window: int, stride: int) -> list[Window]:
    """Windows over a sequence of ``length`` positions (prefix at 0) that score positions ``1..length-1`` once."""
    if window < 2 or not 0 < stride < window:
        raise UserError(f"--window {window} --stride {stride}: need window >= 2 and 0 < stride < window")
    end = min(window, length)
    windows = [Window(0, end, 1)]
    begin = 0
    while end < length:
        begin += stride
        new_end = min(begin + window, length)
        windows.append(Window(begin, new_end, end))
        end = new_end
    return windows


@dataclass
class DocumentScore:
    """One document's token ids, the nats of each (filled in as its windows run) and its totals."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]
    nats: np.ndarray = field(init=False)
    pending: int = 0

    def __post_init__(self) -> None:
        self.nats = np.zeros(len(self.ids), dtype=np.float64)

    def totals(self) -> ScoreTotals:
        """The document's sums; each token's nats shared among the characters its offsets cover."""
        is_cjk = np.zeros(len(self.text) + 1, dtype=np.int64)  # shifted by one: cumulative[i] = CJK in text[:i]
        cjk_bytes = 0
        for run in CJK_RUN.finditer(self.text):
            is_cjk[run.start() + 1 : run.end() + 1] = 1
            cjk_bytes += len(run.group().encode("utf-8"))
        cumulative = np.cumsum(is_cjk)
        spans = np.asarray(self.offsets, dtype=np.int64).reshape(-1, 2)
        width = spans[:, 1] - spans[:, 0]
        share = np.where(width > 0, (cumulative[spans[:, 1]] - cumulative[spans[:, 0]]) / np.maximum(width, 1), 0.0)
        return ScoreTotals(
            documents=1,
            chars=len(self.text),
            bytes=len(self.text.encode("utf-8")),
            tokens=float(len(self.ids)),
            nats=float(self.nats.sum()),
            cjk_chars=int(cumulative[-1]),
            cjk_bytes=cjk_bytes,
            cjk_tokens=float(share.sum()),
            cjk_nats=float((share * self.nats).sum()),
        )


def prefix_token_id(tokenizer) -> int:
    """The context-only token before each document: BOS, else EOS (lm-evaluation-harness's choice)."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise UserError("the model's tokenizer has neither a BOS nor an EOS token, so a document's first token has no "
                    "context to be scored from; use a tokenizer with a BOS token")


class TextScorer:
    """Scores documents with ``model`` (a ``*ForCausalLM``) and ``tokenizer`` (a fast tokenizer)."""

    def __init__(self, model, tokenizer, window: int = 512, stride: int = 256, batch_windows: int = 4) -> None:
        sliding_windows(2, window, stride)  # refuses bad settings before any work
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions is not None and window > positions:
            raise UserError(f"--window {window}: the model has only {positions} positions; pass --window {positions} "
                            "or less")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.window, self.stride, self.batch_windows = window, stride, batch_windows
        self.prefix = prefix_token_id(tokenizer)

    def encode(self, text: str) -> DocumentScore:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return DocumentScore(text, list(encoded["input_ids"]), [tuple(span) for span in encoded["offset_mapping"]])

    def score(self, texts: Iterable[str]) -> Iterator[DocumentScore]:
        """Each text's ``DocumentScore`` with its nats filled in, in order, as soon as all its windows have run."""
        queue: deque[DocumentScore] = deque()
        batch: list[tuple[DocumentScore, Window]] = []
        for text in texts:
            document = self.encode(text)
            windows = sliding_windows(len(document.ids) + 1, self.window, self.stride) if document.ids else []
            document.pending = len(windows)
            queue.append(document)
            for window in windows:
                batch.append((document, window))
                if len(batch) == self.batch_windows:
                    self._run(batch)
                    batch = []
            while queue and queue[0].pending == 0:
                yield queue.popleft()
        self._run(batch)
        yield from queue

    @torch.inference_mode()
    def _run(self, batch: list[tuple[DocumentScore, Window]]) -> None:
        if not batch:
            return
        width = max(w.end - w.begin - 1 for _, w in batch)
        device = self.model.get_input_embeddings().weight.device
        ids = torch.full((len(batch), width), self.prefix, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (document, w) in enumerate(batch):
            # the window's inputs are sequence positions [begin, end - 1) of [prefix, *ids]
            tokens = document.ids
            sequence = [self.prefix, *tokens[: w.end - 2]] if w.begin == 0 else tokens[w.begin - 1 : w.end - 2]
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        hidden = self.model.get_decoder()(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        for row, (document, w) in enumerate(batch):
            # input position p predicts sequence position begin + p + 1, which is document token begin + p
            first, last = w.first_target - w.begin - 1, w.end - w.begin - 1
            targets = torch.tensor(document.ids[w.first_target - 1 : w.end - 1], device=device)
            document.nats[w.first_target - 1 : w.end - 1] = self._nats(hidden[row, first:last], targets)
            document.pending -= 1

    def _nats(self, hidden: Tensor, targets: Tensor) -> np.ndarray:
        head = self.model.get_output_embeddings()
        parts = []
        for start in range(0, hidden.shape[0], HEAD_CHUNK):
            logits = head(hidden[start : start + HEAD_CHUNK]).float()
            parts.append(F.cross_entropy(logits, targets[start : start + HEAD_CHUNK], reduction="none"))
        return torch.cat(parts).double().cpu().numpy()
