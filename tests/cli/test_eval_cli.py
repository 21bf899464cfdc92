"""``zhllama eval``: figures per input file and in total (through the console script), the same bits per byte as
lm-evaluation-harness on the same documents and model, a ``zhllama fit`` run (whose checkpoint monitor watched
``val/bits_per_byte``) as the model, and bad input refused in one line (through ``cli.main.main`` in this process,
the code the console script runs)."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from lightning_modules.model_loading import build_causal_lm, tiny_llama_config
from tests.cli.console import OFFLINE, console, in_process
from tests.cli.tiny_fit import TINY, small_corpus, tiny_fit_args
from tests.conftest import read_jsonl_texts
from tokenization.cjk import count_cjk_chars

def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def exported(zh_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init tiny LLaMA saved with the Chinese-extended tokenizer, as `zhllama export` leaves a model."""
    folder = tmp_path_factory.mktemp("exported") / "model"
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir)
    model = build_causal_lm(None, tiny_llama_config(vocab_size=len(tokenizer), max_position_embeddings=256), 7)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def inputs(paragraph_sample: Path, english_prose: list[str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Chinese paragraphs (cut to 150 characters, so each fits one window) and English prose, in two files."""
    folder = tmp_path_factory.mktemp("eval_inputs")
    chinese = [text[:150] for text in read_jsonl_texts(paragraph_sample)[:5]]
    files = [folder / "zh.jsonl", folder / "en.txt"]
    files[0].write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in chinese), "utf-8")
    files[1].write_text("\n".join(text[:300] for text in english_prose[:3]) + "\n", "utf-8")
    return files


def test_figures_per_file_and_in_total(exported: Path, inputs: list[Path]) -> None:
    rows = json_lines(console("eval", "--model", exported, "--input", *inputs, "--window", "256", "--stride", "128",
                              "--json"))
    assert [row["input"] for row in rows] == [*map(str, inputs), "total"]
    zh, en, total = rows
    assert (zh["documents"], en["documents"], total["documents"]) == (5, 3, 8)
    for key in ("chars", "bytes", "tokens"):
        assert total[key] == pytest.approx(zh[key] + en[key])
    texts = read_jsonl_texts(inputs[0])
    assert zh["cjk"]["chars"] == sum(map(count_cjk_chars, texts)) > 0 and en["cjk"]["chars"] == 0
    for row in rows:
        assert row["bits_per_byte"] * row["bytes"] == pytest.approx(row["bits_per_char"] * row["chars"])
        assert row["tokens_per_char"] == pytest.approx(row["tokens"] / row["chars"])
    nats = total["bits_per_byte"] * total["bytes"] * math.log(2)
    assert total["token_perplexity"] == pytest.approx(math.exp(nats / total["tokens"]))
    first = json_lines(in_process("eval", "--model", exported, "--input", *inputs, "--max_docs", "2", "--window",
                                  "256", "--stride", "128", "--json"))
    assert [(row["input"], row["documents"]) for row in first] == [(str(inputs[0]), 2), ("total", 2)]


LM_EVAL_TASK = """task: zhllama_bits_per_byte
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: bits_per_byte
    aggregation: bits_per_byte
    higher_is_better: false
"""

LM_EVAL_RUN = """import json, sys
import lm_eval
from lm_eval.tasks import TaskManager
model_args = f"pretrained={sys.argv[1]},dtype=float32,max_length=256,add_bos_token=False"
results = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=["zhllama_bits_per_byte"],
                                  task_manager=TaskManager(include_path=sys.argv[2]), device="cpu", batch_size=4)
print(json.dumps(results["results"]["zhllama_bits_per_byte"]))
"""


@pytest.mark.slow
def test_bits_per_byte_agrees_with_lm_evaluation_harness(exported: Path, inputs: list[Path], tmp_path: Path) -> None:
    """lm-eval scores a document's tokens given its BOS prefix (``add_bos_token=False``: no second BOS), with
    ``len(text.encode())`` bytes: the same definition, computed by code no one here wrote."""
    pytest.importorskip("lm_eval")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "zhllama_bits_per_byte.yaml").write_text(LM_EVAL_TASK.format(data=inputs[0]), "utf-8")
    env = {**os.environ, **OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "datasets"), "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", LM_EVAL_RUN, str(exported), str(tasks)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout.splitlines()[-1])["bits_per_byte,none"]
    ours = json_lines(in_process("eval", "--model", exported, "--input", inputs[0], "--window", "256", "--stride",
                                 "128", "--json"))[-1]
    assert ours["bits_per_byte"] == pytest.approx(theirs, rel=1e-3)  # the issue asks for 1%; they agree to ~1e-7


@pytest.mark.slow
def test_a_fit_run_monitoring_bits_per_byte_is_a_model_to_evaluate(
    zh_tokenizer_dir: Path, wiki_sample: Path, tmp_path: Path
) -> None:
    corpus = small_corpus(wiki_sample, tmp_path / "inputs")
    monitor = tmp_path / "monitor.yaml"
    monitor.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: callbacks.embedding_only.EmbeddingOnly\n"
        "      init_args: {new_rows_only: false, include_lm_head: false}\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "      init_args: {monitor: val/bits_per_byte, mode: min, save_top_k: 1, save_last: true}\n", "utf-8")
    run = tmp_path / "run"
    fit = in_process("fit", *tiny_fit_args("pt_embed.yaml", zh_tokenizer_dir, corpus, tmp_path / "cache"),
                     "--config", monitor, "--model.model_config", TINY, "--trainer.default_root_dir", run,
                     "--trainer.max_steps", "2", "--trainer.logger", "false")
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, mmap=True)
    [state] = [v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert state["monitor"] == "val/bits_per_byte" and 0 < float(state["best_model_score"]) < 30
    [total] = json_lines(in_process("eval", "--model", run, "--input", corpus, "--max_docs", "1", "--window", "64",
                                    "--stride", "32", "--json"))[-1:]
    assert total["documents"] == 1 and 0 < total["bits_per_byte"] < 30
    refused = in_process("eval", "--model", run, "--tokenizer", zh_tokenizer_dir, "--input", corpus)
    assert refused.returncode == 2 and "--tokenizer: only with a base model" in refused.stderr, refused.stderr


def test_bad_input_is_one_line_and_exit_2(exported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": 3}\n', "utf-8")
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(('{"text": "好"}\n' * 200).encode())[:60])
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n", "utf-8")
    small = ["--window", "64", "--stride", "32"]
    for argv, named in (
        (["--input", bad, *small], f"{bad}:2"),
        (["--input", truncated, *small], f"{truncated}: unreadable"),
        (["--input", blank, *small], "no documents"),
        (["--input", tmp_path / "missing.jsonl"], "missing.jsonl"),
        (["--input", bad, "--window", "64", "--stride", "64"], "--window 64 --stride 64"),
        (["--input", bad, "--max_docs", "0"], "--max_docs 0"),
    ):
        result = in_process("eval", "--model", exported, *argv)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("zhllama eval: ") and named in lines[0], result.stderr
