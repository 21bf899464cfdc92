"""``zhllama generate`` on a tiny LLaMA wired to answer every prompt with one token ("好") and then EOS, and on a
random-init one whose answers each sampling flag changes: greedy, top-k 1, a tiny top-p and a tiny temperature
must equal argmax decoding computed here by hand, which the defaults (temperature 0.2, top-k 40) never give."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cli.generate import main
from datamodules.prompt_templates import get_template
from lightning_modules.generation import Sampling, prompt_ids, resolve_placement
from tokenization.errors import UserError
from tokenization.atomic_write import OutputRefusedError
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


def test_prompt_file_answered_in_batch(model_dir: Path, alpaca_sample: Path, tmp_path: Path):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"instruction": "翻译", "input": "hello"}, {"prompt": "你是谁？"}, {"question": "一加一等于几？", "id": 7}]
    real = [json.dumps(json.loads(alpaca_sample.read_text(encoding="utf-8"))[0], ensure_ascii=False)]
    prompts.write_text("\n".join([json.dumps(r, ensure_ascii=False) for r in rows] + real) + "\n", encoding="utf-8")
    out = tmp_path / "answers" / "out.jsonl"
    assert main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(out), "--batch_size", "3"]) == 0
    answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [a["output"] for a in answers] == ["好"] * 4
    assert answers[2] == {"question": "一加一等于几？", "id": 7, "output": "好"}


def test_bad_prompt_file_and_missing_output_are_refused(model_dir: Path, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"instruction": "ok"}\n{"text": "no prompt field"}\n')
    with pytest.raises(UserError, match=r"p\.jsonl:2: no string field instruction / prompt / question"):
        main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(tmp_path / "o.jsonl")])
    with pytest.raises(UserError, match="go together"):
        main(["--model", str(model_dir), "--prompts", str(prompts)])
    with pytest.raises(UserError, match="no config.json"):
        main(["--model", str(tmp_path), "--prompt", "x"])
    with pytest.raises(UserError, match="--template: unknown prompt template 'nope'"):
        main(["--model", str(model_dir), "--prompt", "x", "--template", "nope"])
    with pytest.raises(UserError, match=r"--temperature 0\.0; --top_p 1\.5: out of range"):
        main(["--model", str(model_dir), "--prompt", "x", "--temperature", "0", "--top_p", "1.5"])


@pytest.mark.slow
def test_interactive_through_a_pipe(model_dir: Path):
    result = subprocess.run(
        [sys.executable, "-m", "cli", "generate", "--model", str(model_dir), "--interactive"],
        input="你好\nexit\n不会被回答\n", capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "好\n"


def test_output_is_written_whole_or_not_at_all(model_dir: Path, tmp_path: Path, monkeypatch):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "你好"}\n', encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    out.write_text('{"prompt": "earlier", "output": "kept"}\n', encoding="utf-8")
    with pytest.raises(OutputRefusedError, match="holds this command's input"):
        main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(prompts)])
    (tmp_path / "answers").mkdir()
    with pytest.raises(OutputRefusedError, match="is a directory"):
        main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(tmp_path / "answers")])
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == out:
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        main(["--model", str(model_dir), "--prompts", str(prompts), "--output", str(out)])
    assert out.read_text(encoding="utf-8") == '{"prompt": "earlier", "output": "kept"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers", "answers.jsonl", "p.jsonl"]
    assert prompts.read_text(encoding="utf-8") == '{"prompt": "你好"}\n'


# ---- every decoding flag changes the answer -------------------------------------------------------------------
INSTRUCTION = "写一首关于春天的诗"
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def random_model(zh_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """(directory, model, tokenizer): a seeded random-init tiny LLaMA, whose next-token distribution is nearly flat
    (the top token has under 0.1% of the mass at temperature 0.2), so any sampling differs from argmax decoding."""
    tokenizer = AutoTokenizer.from_pretrained(zh_tokenizer_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=len(tokenizer)))).eval()
    out = tmp_path_factory.mktemp("random_generate_model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out, model, tokenizer


@torch.no_grad()
def argmax_decoding(model, tokenizer, repetition_penalty: float = 1.0) -> list[int]:
    """Greedy decoding by hand, with the repetition penalty as Hugging Face defines it (CTRL's): the logit of every
    token already in the sequence, prompt included, is divided by the penalty if positive, multiplied if negative."""
    ids = prompt_ids(tokenizer, get_template("alpaca_v1"), INSTRUCTION)
    answer: list[int] = []
    for _ in range(NEW_TOKENS):
        logits = model(torch.tensor([ids + answer])).logits[0, -1]
        seen = torch.tensor(sorted(set(ids + answer)))
        scores = logits[seen]
        logits[seen] = torch.where(scores < 0, scores * repetition_penalty, scores / repetition_penalty)
        answer.append(int(logits.argmax()))
        if answer[-1] == tokenizer.eos_token_id:
            break
    return answer


def answer(capsys, model_dir: Path, *flags: str) -> str:
    argv = ["--model", str(model_dir), "--prompt", INSTRUCTION, "--max_new_tokens", str(NEW_TOKENS), *flags]
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "flags",
    [
        ["--greedy", "--repetition_penalty", "1.0"],
        ["--top_k", "1", "--temperature", "1.0", "--top_p", "1.0", "--repetition_penalty", "1.0"],
        ["--top_p", "1e-9", "--top_k", "0", "--temperature", "1.0", "--repetition_penalty", "1.0"],
        ["--temperature", "1e-4", "--top_k", "0", "--top_p", "1.0", "--repetition_penalty", "1.0"],
    ],
    ids=["greedy", "top_k_1", "tiny_top_p", "tiny_temperature"],
)
def test_each_decoding_flag_that_leaves_one_token_gives_argmax_decoding(capsys, random_model, flags):
    model_dir, model, tokenizer = random_model
    expected = argmax_decoding(model, tokenizer)
    assert len(expected) == NEW_TOKENS and tokenizer.eos_token_id not in expected  # --max_new_tokens is what stops
    assert answer(capsys, model_dir, *flags) == tokenizer.decode(expected, skip_special_tokens=True) + "\n"


def test_default_sampling_is_not_argmax_decoding_and_the_seed_decides_it(capsys, random_model):
    model_dir, model, tokenizer = random_model
    greedy = tokenizer.decode(argmax_decoding(model, tokenizer), skip_special_tokens=True) + "\n"
    sampled = answer(capsys, model_dir)
    assert sampled != greedy  # so the tests above fail if their flag is ignored
    assert answer(capsys, model_dir) == sampled
    assert answer(capsys, model_dir, "--seed", "7") != sampled


def test_repetition_penalty_is_applied_as_hugging_face_defines_it(capsys, random_model):
    model_dir, model, tokenizer = random_model
    plain, favoured = argmax_decoding(model, tokenizer), argmax_decoding(model, tokenizer, repetition_penalty=0.2)
    assert favoured != plain and set(favoured) & set(prompt_ids(tokenizer, get_template("alpaca_v1"), INSTRUCTION))
    expected = tokenizer.decode(favoured, skip_special_tokens=True) + "\n"
    assert answer(capsys, model_dir, "--greedy", "--repetition_penalty", "0.2") == expected


def test_sampling_settings_reach_the_generation_config(random_model):
    _, _, tokenizer = random_model
    config = Sampling(0.7, 5, 0.5, 1.3, 12, True).generation_config(tokenizer)
    assert (config.temperature, config.top_k, config.top_p) == (0.7, 5, 0.5)
    assert (config.repetition_penalty, config.max_new_tokens, config.do_sample) == (1.3, 12, True)
    assert (config.bos_token_id, config.eos_token_id) == (tokenizer.bos_token_id, tokenizer.eos_token_id)
    assert Sampling(do_sample=False).generation_config(tokenizer).do_sample is False


# ---- device and dtype ---------------------------------------------------------------------------------------
def test_auto_placement_is_the_gpu_in_bf16_when_there_is_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_placement() == ("cuda", "bf16")
    assert resolve_placement("cuda:1", "fp32") == ("cuda:1", "fp32")
    assert resolve_placement("cpu") == ("cpu", "fp32")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert resolve_placement() == ("cuda", "fp16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_placement() == ("cpu", "fp32")
    with pytest.raises(UserError, match="--device cuda: no CUDA device"):
        resolve_placement("cuda")
    with pytest.raises(UserError, match="--dtype fp8"):
        resolve_placement("cpu", "fp8")


def test_generate_defaults_to_auto_placement(capsys, model_dir: Path, monkeypatch):
    import lightning_modules.generation as generation

    asked = []
    real = generation.resolve_placement
    monkeypatch.setattr(generation, "resolve_placement", lambda *args: asked.append(args) or real("cpu", "fp32"))
    assert main(["--model", str(model_dir), "--prompt", "你好"]) == 0
    assert asked == [("auto", "auto")] and capsys.readouterr().out == "好\n"
