"""Every failure a user can fix ends, through the console script, in one line naming the file or option and exit
status 2, without a traceback; ``ZHLLAMA_DEBUG=1`` brings the traceback back. The refusals of a resumed or
exported stage-1 run go through ``cli.main.main`` in this process, the code the console script runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from lightning_modules.model_loading import tiny_llama_config
from tests.cli.console import console, in_process

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "tiny"
TINY = json.dumps(
    {"vocab_size": 32000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
     "intermediate_size": 128, "max_position_embeddings": 64, "tie_word_embeddings": False}
)


def error_line(result: subprocess.CompletedProcess, command: str, *named: object) -> str:
    """The one ``zhllama COMMAND: ...`` line, last on stderr (Lightning's own info lines may precede it)."""
    assert result.returncode == 2, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"zhllama {command}: ")]
    assert len(lines) == 1 and result.stderr.endswith(lines[0] + "\n"), result.stderr[-4000:]
    for name in named:
        assert str(name) in lines[0], lines[0]
    return lines[0]


# ---- zhllama fit ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(wiki_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("\n".join(wiki_sample.read_text(encoding="utf-8").splitlines()[:3]) + "\n", encoding="utf-8")
    return path


def fit_argv(run: Path, tokenizer: Path, inputs: Path, *extra: object, config: str = "pt_embed.yaml") -> list:
    return [
        "fit", "--config", CONFIGS / config,
        "--data.init_args.tokenizer", tokenizer, "--data.init_args.inputs", inputs,
        "--data.init_args.cache_dir", run.parent / "cache", "--data.init_args.block_size", "32",
        "--data.init_args.batch_size", "2", "--data.init_args.val_documents", "1", "--data.init_args.num_proc", "1",
        "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0", "--trainer.default_root_dir", run,
        "--model.model_config", TINY, "--trainer.max_steps", "2", *extra,
    ]


@pytest.fixture(scope="module")
def stage1(zh_tokenizer_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(work directory, last.ckpt) of a two-step stage-1 run."""
    work = tmp_path_factory.mktemp("stage1")
    result = in_process(*fit_argv(work / "run", zh_tokenizer_dir, corpus), cwd=work)
    assert result.returncode == 0, result.stderr[-4000:]
    (ckpt,) = work.rglob("last.ckpt")
    return work, ckpt


def resume_argv(stage1: tuple[Path, Path], tokenizer: Path, corpus: Path, *extra: object) -> list:
    work, ckpt = stage1
    return fit_argv(work / "run", tokenizer, corpus, "--trainer.max_steps", "4", "--ckpt_path", ckpt, *extra)


@pytest.mark.slow
def test_fit_with_missing_inputs_names_the_option_and_path(zh_tokenizer_dir, tmp_path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    argv = fit_argv(tmp_path / "run", zh_tokenizer_dir, missing)
    error_line(console(*argv, cwd=tmp_path), "fit", "data.inputs", missing, "check the path")
    debug = console(*argv, cwd=tmp_path, debug=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "nowhere.jsonl" in debug.stderr


@pytest.mark.slow
def test_sft_fit_with_missing_inputs_names_the_option_and_path(zh_tokenizer_dir, tmp_path) -> None:
    missing = tmp_path / "alpaca.json"
    argv = ["fit", "--config", CONFIGS / "sft.yaml", "--model.init_from", "null", "--model.model_config", TINY,
            "--data.init_args.tokenizer", zh_tokenizer_dir, "--data.init_args.inputs", missing,
            "--trainer.default_root_dir", tmp_path / "run"]
    error_line(in_process(*argv, cwd=tmp_path), "fit", "data.inputs", missing, "check the path")


@pytest.mark.slow
def test_resume_under_another_freeze_policy_is_one_line(stage1, zh_tokenizer_dir, corpus, tmp_path) -> None:
    override = tmp_path / "new_rows_only.yaml"
    override.write_text(
        "trainer:\n  callbacks:\n    - class_path: callbacks.embedding_only.EmbeddingOnly\n"
        "      init_args: {new_rows_only: true, include_lm_head: false}\n",
        encoding="utf-8",
    )
    result = in_process(*resume_argv(stage1, zh_tokenizer_dir, corpus, "--config", override), cwd=stage1[0])
    error_line(result, "fit", "new_rows_only=False", "new_rows_only=True", "model.init_from")


@pytest.mark.slow
def test_resume_with_another_block_size_is_one_line(stage1, zh_tokenizer_dir, corpus) -> None:
    result = in_process(*resume_argv(stage1, zh_tokenizer_dir, corpus, "--data.init_args.block_size", "16"),
                        cwd=stage1[0])
    error_line(result, "fit", "cannot resume the data position", "num_samples", "block size")


@pytest.mark.slow
def test_resume_with_another_tokenizer_names_the_tokenizer(stage1, zh_tokenizer_dir_with_pad, corpus) -> None:
    result = in_process(*resume_argv(stage1, zh_tokenizer_dir_with_pad, corpus), cwd=stage1[0])
    assert "tokenizer" in error_line(result, "fit")


@pytest.mark.slow
def test_a_truncated_checkpoint_or_a_text_file_as_ckpt_path_is_named(stage1, zh_tokenizer_dir, corpus, tmp_path):
    work, ckpt = stage1
    half, text = tmp_path / "half.ckpt", tmp_path / "notes.ckpt"
    data = ckpt.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    text.write_text("not a checkpoint\n", encoding="utf-8")
    for broken in (half, text):
        argv = fit_argv(work / "run", zh_tokenizer_dir, corpus, "--trainer.max_steps", "4", "--ckpt_path", broken)
        error_line(in_process(*argv, cwd=work), "fit", broken)


@pytest.mark.slow
def test_export_of_a_text_file_or_a_truncated_checkpoint_is_named(stage1, tmp_path) -> None:
    _, ckpt = stage1
    half, text = tmp_path / "half.ckpt", tmp_path / "notes.ckpt"
    data = ckpt.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    text.write_text("not a checkpoint\n", encoding="utf-8")
    for broken in (half, text):
        error_line(in_process("export", "--ckpt", broken, "--output", tmp_path / "out", cwd=tmp_path), "export",
                   broken)
    assert not (tmp_path / "out").exists()


# ---- zhllama generate ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(zh_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory as `zhllama export` writes it: config, safetensors weights, tokenizer files."""
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=len(tokenizer))))
    out = tmp_path_factory.mktemp("exported") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def broken_copy(exported: Path, tmp_path: Path, breaks) -> Path:
    model = tmp_path / "model"
    shutil.copytree(exported, model)
    breaks(model)
    return model


def generate(model: Path, cwd: Path) -> subprocess.CompletedProcess:
    return console("generate", "--model", model, "--prompt", "你好", "--max_new_tokens", "2", cwd=cwd)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_generate_without_weights_names_the_missing_file(exported, tmp_path) -> None:
    model = broken_copy(exported, tmp_path, lambda m: (m / "model.safetensors").unlink())
    result = generate(model, tmp_path)
    assert result.stderr.count("\n") == 1
    error_line(result, "generate", model, "no model.safetensors", "zhllama export")


def test_generate_with_truncated_weights_names_the_file(exported, tmp_path) -> None:
    model = broken_copy(exported, tmp_path, lambda m: truncate(m / "model.safetensors"))
    result = generate(model, tmp_path)
    assert result.stderr.count("\n") == 1
    error_line(result, "generate", model / "model.safetensors", "truncated or corrupt", "export again")


def test_generate_without_tokenizer_config_names_it_not_sft(exported, tmp_path) -> None:
    model = broken_copy(exported, tmp_path, lambda m: (m / "tokenizer_config.json").unlink())
    result = generate(model, tmp_path)
    assert result.stderr.count("\n") == 1
    line = error_line(result, "generate", model, "no tokenizer_config.json")
    assert "SFT" not in line and "BOS" not in line
    debug = console("generate", "--model", model, "--prompt", "x", cwd=tmp_path, debug=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "UserError" in debug.stderr


def test_generate_with_a_missing_prompt_file_names_it(exported, tmp_path) -> None:
    missing = tmp_path / "prompts.jsonl"
    result = console("generate", "--model", exported, "--prompts", missing, "--output", tmp_path / "o.jsonl",
                     cwd=tmp_path)
    assert result.stderr.count("\n") == 1
    error_line(result, "generate", missing, "No such file or directory", "check the path")
