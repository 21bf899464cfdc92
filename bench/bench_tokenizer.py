"""Measures the tokenizer merges on the shared data: tokens per CJK character, what each merge changes for
non-Chinese text, unreachable pieces, how often transformers' ids differ from SentencePiece's (with
transformers' own conversion of ``tokenizer.model`` as the baseline), and how much of each corpus data
preparation's proven SentencePiece fast path covers. Prints one table per question.

    python bench/bench_tokenizer.py [--shared-data ../shared/data]
"""

from __future__ import annotations

import argparse
import inspect
import importlib
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentencepiece as spm  # noqa: E402

from tokenization.cjk import cjk_runs  # noqa: E402
from tokenization.merge import merge_tokenizers  # noqa: E402
from tokenization.reachability import unreachable_piece_ids  # noqa: E402
from tokenization.sentencepiece_proto import load_model_proto, processor  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def english_texts() -> tuple[list[str], list[str]]:
    modules = [importlib.import_module(m) for m in ("argparse", "json", "textwrap", "logging", "subprocess")]
    prose = []
    for module in modules:
        for _, obj in inspect.getmembers(module):
            if inspect.isclass(obj) or inspect.isfunction(obj):
                prose += [" ".join(b.split()) for b in (inspect.getdoc(obj) or "").split("\n\n") if len(b) > 40]
    code = [Path(inspect.getsourcefile(m)).read_text() for m in modules]
    gpl = Path("/usr/share/common-licenses/GPL-3")
    lines = gpl.read_text().splitlines() if gpl.is_file() else []
    return prose + lines, code


def hf_mismatches(directory: Path, texts: list[str]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    sp = spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
    hf = tokenizer(texts)["input_ids"]
    ref = [[sp.bos_id(), *ids] for ids in sp.encode(texts)]
    return sum(a != b for a, b in zip(hf, ref))


def transformers_conversion_dir(model: Path, into: Path) -> Path:
    """What a user gets from transformers 5 for a bare LLaMA tokenizer.model (its own conversion)."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "tokenizer.model").write_bytes(model.read_bytes())
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False}
    (into / "tokenizer_config.json").write_text(json.dumps(config))
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared-data", type=Path, default=PROJECT.parent / "shared" / "data")
    args = parser.parse_args()
    tok = args.shared_data / "tokenizers"
    articles = [json.loads(line)["text"] for line in (args.shared_data / "zhwiki" / "wiki_zh_sample.jsonl").open()]
    lines = [line for article in articles for line in article.splitlines() if line.strip()]
    runs = [run for article in articles for run in cjk_runs(article)]
    cjk_chars = sum(map(len, runs))
    english, code = english_texts()

    work = Path(tempfile.mkdtemp(prefix="bench_tokenizer."))
    dirs: dict[str, Path] = {}
    for name, base in (("llama", tok / "llama" / "tokenizer.model"), ("mistral", tok / "mistral_v1" / "tokenizer.model")):
        for mode in ("anchor", "clean"):
            started = time.perf_counter()
            merge_tokenizers(base, tok / "chinese_sp.model", work / f"{name}_{mode}", mode=mode)
            dirs[f"{name}+zh {mode}"] = work / f"{name}_{mode}"
            print(f"merge {name} {mode}: {time.perf_counter() - started:.1f} s")
    from tokenization.hf_tokenizer_files import write_hf_tokenizer_files

    write_hf_tokenizer_files(load_model_proto(tok / "llama" / "tokenizer.model"), work / "llama_ours")
    base_sp = processor(load_model_proto(tok / "llama" / "tokenizer.model"))

    print(f"\n## Chinese: {len(articles)} zhwiki articles, {cjk_chars} CJK characters")
    print("| tokenizer | pieces | tokens/CJK char (CJK runs) | tokens/CJK char (whole articles) | unreachable pieces (added ones) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    anchor_runs = None
    for name, model in [("llama", tok / "llama" / "tokenizer.model")] + [(k, d / "tokenizer.model") for k, d in dirs.items()]:
        proto = load_model_proto(model)
        run_tokens = sum(map(len, processor(proto, add_dummy_prefix=False).encode(runs)))
        doc_tokens = sum(map(len, processor(proto).encode(articles)))
        note = ""
        if name == "llama+zh anchor":
            anchor_runs = run_tokens
        elif name == "llama+zh clean" and anchor_runs:
            note = f" ({run_tokens / anchor_runs:.3f} x anchor)"
        print(f"| {name} | {len(proto.pieces)} | {run_tokens / cjk_chars:.3f}{note} | {doc_tokens / cjk_chars:.3f} | "
              f"{len(unreachable_piece_ids(proto))} ({len(unreachable_piece_ids(proto, range(base_sp.get_piece_size(), len(proto.pieces))))}) |")

    print(f"\n## Non-Chinese text: lines whose ids differ from the base vocabulary's ({len(english)} prose, {len(code)} code)")
    print("| tokenizer | prose | code |")
    print("| --- | ---: | ---: |")
    for name in ("llama+zh anchor", "llama+zh clean"):
        sp = processor(load_model_proto(dirs[name] / "tokenizer.model"))
        prose_diff = sum(a != b for a, b in zip(sp.encode(english), base_sp.encode(english)))
        code_diff = sum(a != b for a, b in zip(sp.encode(code), base_sp.encode(code)))
        print(f"| {name} | {prose_diff} | {code_diff} |")

    print("\n## transformers ids != SentencePiece ids (texts that differ)")
    print(f"| tokenizer dir | {len(articles)} articles | {len(lines)} article lines | {len(english)} English | {len(code)} code files |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = [("llama, transformers' own conversion (baseline)", transformers_conversion_dir(tok / "llama" / "tokenizer.model", work / "llama_conv")),
            ("llama, our tokenizer.json", work / "llama_ours")] + list(dirs.items())
    for name, directory in rows:
        counts = [hf_mismatches(directory, texts) for texts in (articles, lines, english, code)]
        print(f"| {name} | " + " | ".join(map(str, counts)) + " |")

    corpora = {
        "wiki articles": articles,
        "CMRC paragraphs": [
            json.loads(line)["text"]
            for line in (args.shared_data / "zhwiki" / "cmrc2018_paragraphs.jsonl").open(encoding="utf-8")
        ],
        "People's Daily paragraphs": [
            line
            for line in (args.shared_data / "news" / "peoples_daily_199801_part00.txt").open(encoding="utf-8")
            if line.strip()
        ],
    }
    print("\n## Data preparation's SentencePiece fast path: documents that must go to tokenizers instead")
    headers = [f"{name} ({len(texts)})" for name, texts in corpora.items()]
    print("| tokenizer dir | merged pieces proven | " + " | ".join(headers) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in corpora) + " |")
    for name, directory in dirs.items():
        print(f"| {name} | " + " | ".join(map(str, fast_path_coverage(directory, corpora.values()))) + " |")


def fast_path_coverage(directory: Path, corpora) -> list[str]:
    from transformers import AutoTokenizer

    from datamodules.document_encoder import DocumentEncoder
    from tokenization.sentencepiece_equivalent import build_equivalent

    backend = AutoTokenizer.from_pretrained(directory).backend_tokenizer.to_str()
    equivalent = build_equivalent(backend)
    encoder = DocumentEncoder(backend, equivalent)
    proven = f"{equivalent.proven_pieces} of {equivalent.proven_pieces + equivalent.unsafe_pieces}"
    return [proven] + [str(encoder.encode(texts)[1]) for texts in corpora]


if __name__ == "__main__":
    main()
