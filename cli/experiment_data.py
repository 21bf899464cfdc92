"""The SmolLM2 experiment's text: Chinese training text, held-out Chinese Wikipedia and English prose.

The held-out articles are a seeded document split of the Wikipedia sample (``datamodules/doc_split.py``); the
training text is the rest of it plus every other openly licensed Chinese text at hand, so no evaluation text is
ever trained on, by the tokenizer or by the model. Each held-out article is cut to its first sentences (about
``heldout_chars`` characters) so that one evaluation of a 135M model takes about a minute on a CPU.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

from datamodules.doc_split import validation_mask
from tokenization.atomic_write import atomic_file
from tokenization.corpus import iter_documents

#: Standard-library modules whose docstrings are the English prose (the same as docs/evaluation.md's).
PROSE_MODULES = ("argparse", "json", "textwrap", "dataclasses", "pathlib", "logging", "subprocess", "inspect",
                 "functools")
SENTENCE_ENDS = "。！？"


@dataclass(frozen=True)
class ExperimentText:
    wiki_train: Path
    heldout_zh: Path
    english: Path
    heldout_titles: list[str]


def english_prose(paragraphs: int) -> list[str]:
    """The first ``paragraphs`` docstring paragraphs over 200 characters of :data:`PROSE_MODULES`."""
    found: list[str] = []
    for name in PROSE_MODULES:
        for _, obj in inspect.getmembers(importlib.import_module(name)):
            doc = inspect.getdoc(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
            for block in (doc or "").split("\n\n"):
                text = " ".join(block.split())
                if len(text) > 200 and text[0].isalpha():
                    found.append(text)
    return found[:paragraphs]


def lead(text: str, chars: int) -> str:
    """The article's first sentences: cut at the last sentence end before ``chars`` characters (or at ``chars``)."""
    if len(text) <= chars:
        return text
    cut = max(text.rfind(end, 0, chars) for end in SENTENCE_ENDS)
    return text[: cut + 1] if cut > chars // 2 else text[:chars]


def write_jsonl(path: Path, records: list[dict]) -> None:
    with atomic_file(path) as partial, open(partial, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def split_wikipedia(wiki: Path, out_dir: Path, heldout_articles: int, heldout_chars: int,
                    english_paragraphs: int, seed: int = 13) -> ExperimentText:
    """Writes ``wiki_train.jsonl`` (the articles not held out), ``heldout_zh.jsonl`` (the leads of the held-out
    ones) and ``english_prose.txt`` under ``out_dir``."""
    articles = [json.loads(line) for line in wiki.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = validation_mask(len(articles), seed, 0.0, heldout_articles)
    train = [a for a, h in zip(articles, held) if not h]
    heldout = [{**a, "text": lead(a["text"], heldout_chars)} for a, h in zip(articles, held) if h]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "wiki_train.jsonl", train)
    write_jsonl(out_dir / "heldout_zh.jsonl", heldout)
    with atomic_file(out_dir / "english_prose.txt") as partial:
        partial.write_text("\n".join(english_prose(english_paragraphs)) + "\n", encoding="utf-8")
    return ExperimentText(out_dir / "wiki_train.jsonl", out_dir / "heldout_zh.jsonl", out_dir / "english_prose.txt",
                          [a["title"] for a in heldout])


def characters(path: Path) -> int:
    """Characters of all documents of ``path``, as every reader of zhllama sees them."""
    return sum(len(document.text) for document in iter_documents([str(path)]))
