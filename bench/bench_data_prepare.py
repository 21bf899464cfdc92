"""Pretraining data preparation: zhllama's token cache vs the anchor's ``datasets`` pipeline, side by side.

Same tokenizer (the 49953-piece Chinese-LLaMA merge, as a Hugging Face directory written by
``tokenization.hf_tokenizer_files``), same input (the shared wiki sample repeated to ``--docs`` documents),
same number of processes. Each method runs in its own subprocess; the parent polls the RSS of that process
and all its children every 20 ms and keeps the peak of their sum.

- anchor (Chinese-LLaMA-Alpaca ``run_clm_pt_with_peft.py``): ``load_dataset("json")`` -> batched
  ``map(tokenize)`` -> batched ``map(group_texts)`` into 512-token blocks -> ``save_to_disk``;
- ours, default: ``prepare_token_cache`` (what ``WikiBlocksDataModule.prepare`` and ``zhllama data prepare``
  run) with the ``tokenizers`` encoder, the one the anchor uses too;
- ours with ``--fast_path true``: the same pipeline encoding with SentencePiece wherever that is proven to give
  ``tokenizer.json``'s ids (opt-in).

The default also runs on a tenth of the input, to show that peak memory stays flat as the input grows 10x.
Targets: <= 0.5x the anchor's peak memory, flat as the input grows; >= 3x its documents/s with the fast path.

    python bench/bench_data_prepare.py [--docs 20000] [--num_proc N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHLLAMA_SHARED_DATA", ROOT.parent / "shared" / "data"))
MERGED_MODEL = SHARED / "tokenizers" / "expected" / "chinese_llama_v1_49953.model"
WIKI = SHARED / "zhwiki" / "wiki_zh_sample.jsonl"
BLOCK_SIZE = 512


def run_anchor(tokenizer: str, corpus: str, out: str, num_proc: int) -> dict:
    from itertools import chain

    from datasets import load_dataset
    from transformers import AutoTokenizer

    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(tokenizer)
    raw = load_dataset("json", data_files=corpus, split="train", cache_dir=os.path.join(out, "hf"))

    def tokenize_function(examples: dict) -> dict:
        return tok(examples["text"])

    def group_texts(examples: dict) -> dict:
        concatenated = {k: list(chain(*examples[k])) for k in examples}
        total = len(concatenated[next(iter(examples))])
        if total >= BLOCK_SIZE:
            total = (total // BLOCK_SIZE) * BLOCK_SIZE
        result = {k: [t[i : i + BLOCK_SIZE] for i in range(0, total, BLOCK_SIZE)] for k, t in concatenated.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    tokenized = raw.map(tokenize_function, batched=True, num_proc=num_proc, remove_columns=raw.column_names)
    grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc)
    grouped.save_to_disk(os.path.join(out, "processed"))
    seconds = time.perf_counter() - start
    # counted after the clock stops, in small batches (the anchor itself never counts)
    tokens = sum(len(ids) for batch in tokenized.select_columns(["input_ids"]).iter(100) for ids in batch["input_ids"])
    return {"documents": len(raw), "tokens": tokens, "blocks": len(grouped), "seconds": seconds}


def run_ours(tokenizer: str, corpus: str, out: str, num_proc: int, fast_path: bool = False) -> dict:
    from datamodules.token_cache_builder import prepare_token_cache

    start = time.perf_counter()
    prepared = prepare_token_cache(tokenizer, corpus, cache_dir=out, num_proc=num_proc, fast_path=fast_path)
    seconds = time.perf_counter() - start
    report = prepared.report(BLOCK_SIZE)
    return {
        "documents": report["documents"],
        "tokens": report["tokens"],
        "blocks": report["train_blocks"] + report["val_blocks"],
        "seconds": seconds,
        "sentencepiece_documents": report["encoded_by"]["sentencepiece"],
    }


def run_ours_fast_path(tokenizer: str, corpus: str, out: str, num_proc: int) -> dict:
    return run_ours(tokenizer, corpus, out, num_proc, fast_path=True)


def measure(method: str, tokenizer: Path, corpus: Path, out: Path, num_proc: int) -> dict:
    """Runs one method in a subprocess and returns its own timing plus the peak RSS of its process tree."""
    import psutil

    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", method, str(tokenizer), str(corpus), str(out), str(num_proc)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(out / "hf"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.02)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = peak / 2**20
    result["docs_per_s"] = result["documents"] / result["seconds"]
    result["tokens_per_s"] = result["tokens"] / result["seconds"]
    return result


def write_corpus(path: Path, documents: int) -> None:
    lines = WIKI.read_text(encoding="utf-8").splitlines(keepends=True)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(documents):
            handle.write(lines[i % len(lines)])


def write_tokenizer(directory: Path) -> None:
    from tokenization.hf_tokenizer_files import write_hf_tokenizer_files
    from tokenization.sentencepiece_proto import load_model_proto

    write_hf_tokenizer_files(load_model_proto(MERGED_MODEL), directory)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, tokenizer, corpus, out, num_proc = sys.argv[2:7]
        run = {"anchor": run_anchor, "ours": run_ours, "ours_fast_path": run_ours_fast_path}[method]
        print(json.dumps(run(tokenizer, corpus, out, int(num_proc))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20_000, help="documents in the full-size input")
    parser.add_argument("--num_proc", type=int, default=len(os.sched_getaffinity(0)), help="processes, both methods")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        write_tokenizer(work / "tokenizer")
        small, full = work / "wiki_small.jsonl", work / "wiki_full.jsonl"
        write_corpus(small, args.docs // 10)
        write_corpus(full, args.docs)
        print(f"input: {args.docs} documents ({full.stat().st_size / 2**20:.0f} MiB), tokenizer {MERGED_MODEL.name}, "
              f"num_proc {args.num_proc}, block {BLOCK_SIZE}", flush=True)
        results = {}
        arms = (
            ("ours_small", "ours", small),
            ("ours", "ours", full),
            ("ours_fast_path", "ours_fast_path", full),
            ("anchor", "anchor", full),
        )
        for name, method, corpus in arms:
            results[name] = measure(method, work / "tokenizer", corpus, work / name, args.num_proc)
            r = results[name]
            via = f" ({r['sentencepiece_documents']} via SentencePiece)" if "sentencepiece_documents" in r else ""
            print(f"{name:>20}: {r['documents']:>7} docs {r['tokens']:>11} tokens {r['blocks']:>8} blocks "
                  f"{r['seconds']:7.1f} s {r['docs_per_s']:8.1f} docs/s {r['tokens_per_s']:10.0f} tokens/s "
                  f"peak RSS {r['peak_rss_mib']:7.0f} MiB{via}", flush=True)
    ours, anchor, small_run = results["ours"], results["anchor"], results["ours_small"]
    fast = results["ours_fast_path"]
    print(f"docs/s ratio (ours, default / anchor): {ours['docs_per_s'] / anchor['docs_per_s']:.2f}x")
    print(f"docs/s ratio (ours, --fast_path true / anchor): {fast['docs_per_s'] / anchor['docs_per_s']:.2f}x")
    print(f"default / fast path: {ours['docs_per_s'] / fast['docs_per_s']:.2f}x the docs/s, "
          f"{ours['seconds'] - fast['seconds']:+.1f} s")
    print(f"peak RSS ratio (ours / anchor): {ours['peak_rss_mib'] / anchor['peak_rss_mib']:.2f}x (target <= 0.5x)")
    print(f"peak RSS growth, ours, 10x the input: {ours['peak_rss_mib'] / small_run['peak_rss_mib']:.2f}x (flat = 1x)")


if __name__ == "__main__":
    main()
