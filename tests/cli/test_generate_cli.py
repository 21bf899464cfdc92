"""``zhllama generate`` on a tiny LLaMA wired to answer every prompt with one token ("好") and then EOS."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cli.generate import main
from lightning_modules.model_loading import tiny_llama_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(zh_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decoder layers add nothing (o_proj, down_proj = 0), so the last hidden state is the last token's embedding:
    every token embeds as u except "好" (w, orthogonal to u); the head maps u -> "好" and w -> EOS."""
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir)
    model = LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=len(tokenizer))))
    hao = tokenizer.convert_tokens_to_ids("好")
    u, w = torch.ones(64), torch.tensor([1.0, -1.0] * 32)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:] = u
        model.model.embed_tokens.weight[hao] = w
        model.lm_head.weight.zero_()
        model.lm_head.weight[hao] = u
        model.lm_head.weight[tokenizer.eos_token_id] = w
    out = tmp_path_factory.mktemp("tiny_generate_model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_prompt_streams_the_answer_and_stops_at_eos(model_dir: Path, capsys):
    assert main(["--model", str(model_dir), "--prompt", "你好吗？"]) == 0
    assert capsys.readouterr().out == "好\n"  # 400 new tokens allowed: only EOS stopped it


def test_sampling_flags_are_overridable(model_dir: Path, capsys):
    argv = ["--model", str(model_dir), "--prompt", "写一首诗", "--template", "llama2_zh", "--temperature", "0.7",
            "--top_k", "5", "--top_p", "0.5", "--repetition_penalty", "1.0", "--max_new_tokens", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out == "好\n"
    assert main(["--model", str(model_dir), "--prompt", "x", "--greedy", "--max_new_tokens", "1"]) == 0


def test_interactive_answers_each_stdin_line_until_eof(model_dir: Path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("第一个问题\n第二个问题\n"))
    assert main(["--model", str(model_dir), "--interactive"]) == 0
    assert capsys.readouterr().out == "好\n好\n"


def test_prompt_file_answered_in_batch(model_dir: Path, shared_data: Path, tmp_path: Path):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"instruction": "翻译", "input": "hello"}, {"prompt": "你是谁？"}, {"question": "一加一等于几？", "id": 7}]
    real = (shared_data / "eval_prompts" / "belle_eval_set.jsonl").read_text(encoding="utf-8").splitlines()[:1]
    prompts.write_text("\n".join([json.dumps(r, ensure_ascii=False) for r in rows] + real) + "\n", encoding="utf-8")
    out = tmp_path / "answers" / "out.jsonl"
    assert main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(out), "--batch_size", "3"]) == 0
    answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [a["output"] for a in answers] == ["好"] * 4
    assert answers[2] == {"question": "一加一等于几？", "id": 7, "output": "好"}


def test_bad_prompt_file_and_missing_output_are_refused(model_dir: Path, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"instruction": "ok"}\n{"text": "no prompt field"}\n')
    with pytest.raises(SystemExit, match=r"p\.jsonl:2: no string field instruction / prompt / question"):
        main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(tmp_path / "o.jsonl")])
    with pytest.raises(SystemExit, match="go together"):
        main(["--model", str(model_dir), "--prompts", str(prompts)])
    with pytest.raises(FileNotFoundError, match="no config.json"):
        main(["--model", str(tmp_path), "--prompt", "x"])


@pytest.mark.slow
def test_interactive_through_a_pipe(model_dir: Path):
    result = subprocess.run(
        [sys.executable, "-m", "cli", "generate", "--model", str(model_dir), "--interactive"],
        input="你好\nexit\n不会被回答\n", capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "好\n"
