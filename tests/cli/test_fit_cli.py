"""``zhllama fit`` end to end on the tiny configs: stage 1, resume, stage 2 from stage 1's checkpoint."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "tiny"
TINY = json.dumps(
    {"vocab_size": 32000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
     "intermediate_size": 128, "max_position_embeddings": 64, "tie_word_embeddings": False}
)


@pytest.fixture
def small_corpus(wiki_sample: Path, tmp_path: Path) -> Path:
    lines = wiki_sample.read_text(encoding="utf-8").splitlines()[:3]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fit(config: str, zh_tokenizer_dir: Path, corpus: Path, cache: Path, *extra: str, command: str = "fit") -> int:
    return main([
        command, "--config", str(CONFIGS / config),
        "--data.init_args.tokenizer", str(zh_tokenizer_dir),
        "--data.init_args.inputs", str(corpus),
        "--data.init_args.cache_dir", str(cache),
        "--data.init_args.block_size", "32",
        "--data.init_args.batch_size", "2",
        "--data.init_args.val_documents", "1",
        "--data.init_args.num_proc", "1",
        "--trainer.val_check_interval", "2",
        "--trainer.limit_val_batches", "2",
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0",
        *extra,
    ])


@pytest.mark.slow
def test_fit_stage1_resume_and_stage2(zh_tokenizer_dir, small_corpus, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the configs write runs/tiny/... relative to the working directory
    cache = tmp_path / "cache"
    assert fit("pt_embed.yaml", zh_tokenizer_dir, small_corpus, cache, "--model.model_config", TINY,
               "--trainer.max_steps", "2") == 0
    stage1 = tmp_path / "runs/tiny/pt_embed"
    assert (stage1 / "tb" / "config.yaml").is_file() and list((stage1 / "tb").glob("events.out.tfevents.*"))
    ckpt = torch.load(stage1 / "checkpoints" / "last.ckpt", weights_only=False)
    assert list(ckpt["state_dict"]) == ["model.model.embed_tokens.weight"]
    assert ckpt["state_dict"]["model.model.embed_tokens.weight"].shape[0] == len(AutoTokenizer.from_pretrained(zh_tokenizer_dir))

    # resume into the same directory (the saved config is overwritten, not an error)
    assert fit("pt_embed.yaml", zh_tokenizer_dir, small_corpus, cache, "--model.model_config", TINY,
               "--trainer.max_steps", "4", "--ckpt_path", "last") == 0
    assert torch.load(stage1 / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4

    assert fit("pt_lora.yaml", zh_tokenizer_dir, small_corpus, cache, "--trainer.max_steps", "2") == 0
    stage2 = torch.load(tmp_path / "runs/tiny/pt_lora/checkpoints/last.ckpt", weights_only=False)
    assert stage2["hyper_parameters"]["init_from"] == "runs/tiny/pt_embed/checkpoints/last.ckpt"
    assert any("lora_A" in k for k in stage2["state_dict"])
    assert not any("layers.0.self_attn.q_proj.base_layer" in k for k in stage2["state_dict"])

    # `zhllama validate` and `zhllama test` score the trained stage 2 on the held-out documents
    for command in ("validate", "test"):
        assert fit("pt_lora.yaml", zh_tokenizer_dir, small_corpus, cache, "--trainer.logger", "false",
                   "--ckpt_path", "runs/tiny/pt_lora/checkpoints/last.ckpt", command=command) == 0
