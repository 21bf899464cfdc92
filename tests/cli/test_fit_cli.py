"""``zhllama fit`` end to end on the tiny configs: stage 1, resume, stage 2 from stage 1's run directory."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cli.main import main
from tests.cli.tiny_fit import TINY, small_corpus, tiny_fit_args


def fit(config: str, zh_tokenizer_dir: Path, corpus: Path, cache: Path, *extra: str, command: str = "fit") -> int:
    return main([command, *tiny_fit_args(config, zh_tokenizer_dir, corpus, cache), *extra])


@pytest.mark.slow
def test_fit_stage1_resume_and_stage2(zh_tokenizer_dir, wiki_sample, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the configs' default_root_dir runs/tiny/<stage> is relative to the working directory
    corpus, cache = small_corpus(wiki_sample, tmp_path / "inputs"), tmp_path / "cache"
    assert fit("pt_embed.yaml", zh_tokenizer_dir, corpus, cache, "--model.model_config", TINY,
               "--trainer.max_steps", "2") == 0
    stage1 = tmp_path / "runs/tiny/pt_embed"
    logs = stage1 / "tensorboard" / "version_0"
    assert (logs / "config.yaml").is_file() and list(logs.glob("events.out.tfevents.*"))
    ckpt = torch.load(stage1 / "checkpoints" / "last.ckpt", weights_only=True)
    assert list(ckpt["state_dict"]) == ["model.model.embed_tokens.weight"]
    vocabulary = len(AutoTokenizer.from_pretrained(zh_tokenizer_dir))
    assert ckpt["state_dict"]["model.model.embed_tokens.weight"].shape[0] == vocabulary

    # resume into the same run: same checkpoints, the invocation's logs in a new TensorBoard version
    assert fit("pt_embed.yaml", zh_tokenizer_dir, corpus, cache, "--model.model_config", TINY,
               "--trainer.max_steps", "4", "--ckpt_path", "last") == 0
    assert torch.load(stage1 / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert sorted(p.name for p in (stage1 / "tensorboard").iterdir()) == ["version_0", "version_1"]

    # stage 2's config names stage 1's run directory; the checkpoint records it absolute
    assert fit("pt_lora.yaml", zh_tokenizer_dir, corpus, cache, "--trainer.max_steps", "2") == 0
    stage2 = torch.load(tmp_path / "runs/tiny/pt_lora/checkpoints/last.ckpt", weights_only=True)
    assert stage2["hyper_parameters"]["init_from"] == str(stage1)
    assert any("lora_A" in k for k in stage2["state_dict"])
    assert not any("layers.0.self_attn.q_proj.base_layer" in k for k in stage2["state_dict"])

    # a stage resumes from its own checkpoint alone: its parent's run directory may be gone
    shutil.rmtree(stage1)
    assert fit("pt_lora.yaml", zh_tokenizer_dir, corpus, cache, "--trainer.max_steps", "3", "--ckpt_path", "last") == 0
    assert torch.load(tmp_path / "runs/tiny/pt_lora/checkpoints/last.ckpt", weights_only=True)["global_step"] == 3

    # `zhllama validate` and `zhllama test` score the trained stage 2, named by its run directory
    for command in ("validate", "test"):
        assert fit("pt_lora.yaml", zh_tokenizer_dir, corpus, cache, "--trainer.logger", "false",
                   "--ckpt_path", "runs/tiny/pt_lora", command=command) == 0
