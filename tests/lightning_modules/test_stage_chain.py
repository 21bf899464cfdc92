"""Stage checkpoints stand alone: stage 1 -> stage 2 -> SFT, then the parents continue, move or vanish, and the
child restores, resumes and exports exactly as it was trained, needing only its base."""

import shutil
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.checkpoint_io import restore_module
from lightning_modules.hf_export import export_model
from lightning_modules.model_loading import tiny_llama_config
from lightning_modules.run_checkpoints import read_checkpoint
from tests.lightning_modules.tiny_training import snapshot, tiny_module, tiny_trainer, token_loader
from tokenization.errors import UserError

IDS = torch.tensor([[1, 5, 17, 99, 127, 140, 159, 3]])


def run_stage(root: Path, policy, module: CausalLMModule, max_steps: int, ckpt_path=None) -> CausalLMModule:
    """A stage in ``root`` (its run directory) saving ``checkpoints/step=N.ckpt`` every step and ``last.ckpt``."""
    saver = ModelCheckpoint(dirpath=root / "checkpoints", filename="{step}", save_last=True, every_n_train_steps=1,
                            save_top_k=-1)
    tiny_trainer(root, [policy, saver], max_steps=max_steps, enable_checkpointing=True).fit(
        module, train_dataloaders=token_loader(n_batches=6), ckpt_path=ckpt_path
    )
    return module


def lora(r: int) -> LoRAWithEmbeddings:
    return LoRAWithEmbeddings(r=r, alpha=2 * r, dropout=0.0)


def logits(model_dir: Path) -> torch.Tensor:
    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()(input_ids=IDS).logits


def equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_continuing_or_deleting_the_parents_never_changes_a_child(tmp_path, zh_tokenizer_dir, monkeypatch) -> None:
    tokenizer = str(zh_tokenizer_dir)
    s1, s2, sft = tmp_path / "runs" / "pt_embed", tmp_path / "runs" / "pt_lora", tmp_path / "runs" / "sft"
    run_stage(s1, EmbeddingOnly(new_rows_only=True), tiny_module(tokenizer=tokenizer), 2)
    stage2 = lambda: tiny_module(init_from=str(s1), tokenizer=tokenizer)  # noqa: E731 -- a run directory
    run_stage(s2, lora(8), stage2(), 2)
    trained = snapshot(run_stage(sft, lora(4), tiny_module(init_from=str(s2 / "checkpoints" / "last.ckpt"),
                                                          tokenizer=tokenizer), 2))
    sft_ckpt = sft / "checkpoints" / "last.ckpt"
    right_after = logits(export_model(sft_ckpt, tmp_path / "export_right_after", dtype="fp32"))

    before = snapshot(restore_module(s2 / "checkpoints" / "last.ckpt"))
    run_stage(s2, lora(8), stage2(), 4, ckpt_path=s2 / "checkpoints" / "last.ckpt")  # stage 2 continues 2 steps
    continued = snapshot(restore_module(s2 / "checkpoints" / "last.ckpt"))
    assert not torch.equal(before["model.layers.0.self_attn.q_proj.lora_B.default.weight"],
                           continued["model.layers.0.self_attn.q_proj.lora_B.default.weight"])

    # resuming SFT now rebuilds its start from its own checkpoint, not from the continued stage 2
    resumed = tiny_module(init_from=str(s2 / "checkpoints" / "last.ckpt"), tokenizer=tokenizer)
    run_stage(tmp_path / "runs" / "sft_resumed", lora(4), resumed, 2, ckpt_path=sft / "checkpoints" / "step=1.ckpt")
    assert equal(snapshot(resumed), trained)

    shutil.rmtree(s1)
    shutil.rmtree(s2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative = Path("..") / "runs" / "sft" / "checkpoints" / "last.ckpt"
    assert equal(snapshot(restore_module(relative)), trained)
    assert torch.equal(logits(export_model(relative, "exported", dtype="fp32")), right_after)
    assert (elsewhere / "exported" / "config.json").is_file()

    # told the checkpoint it resumes before the model is built (as `zhllama fit --ckpt_path` does), a run
    # resumes with its parents gone: init_from is never read again
    resumed = tiny_module(init_from=str(s2 / "checkpoints" / "last.ckpt"), tokenizer=tokenizer)
    resumed.resume_checkpoint = str(sft / "checkpoints" / "step=1.ckpt")
    run_stage(tmp_path / "runs" / "sft_resumed_again", lora(4), resumed, 2, ckpt_path=resumed.resume_checkpoint)
    assert equal(snapshot(resumed), trained)

    record = read_checkpoint(sft_ckpt)["zhllama"]  # a plain weights_only load
    assert record["format"] == 2 and record["base"]["model_config"] is not None
    # SFT trains embedding and head whole: stage 1's embedding and stage 2's are superseded, its LoRA is carried
    [carried] = record["stages"]
    assert carried["trained"] and all("lora_" in k for k in carried["trained"])


@pytest.fixture
def hf_base(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    out = tmp_path / "base"
    LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=128, max_position_embeddings=64))).save_pretrained(out)
    return out


def test_a_checkpoint_needs_only_its_pinned_base(tmp_path, hf_base, zh_tokenizer_dir, zh_tokenizer_dir_with_pad):
    tokenizer = tmp_path / "tokenizer"  # a copy, deleted below: the checkpoint carries the tokenizer it trained with
    shutil.copytree(zh_tokenizer_dir, tokenizer)
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    run_stage(s1, EmbeddingOnly(), tiny_module(model_config=None, pretrained=str(hf_base), tokenizer=str(tokenizer)), 1)
    with pytest.raises(UserError, match=rf"init_from .*s1 was trained with the tokenizer {tokenizer} \(\d+ rows\), "
                                        rf"not {zh_tokenizer_dir_with_pad} \(\d+ tokens; .*\): its trained rows"):
        tiny_module(init_from=str(s1), tokenizer=str(zh_tokenizer_dir_with_pad)).configure_model()
    trained = snapshot(run_stage(s2, lora(4), tiny_module(init_from=str(s1)), 2))  # the tokenizer carries over

    archive = tmp_path / "archive" / "stage2.ckpt"
    archive.parent.mkdir()
    shutil.copyfile(s2 / "checkpoints" / "last.ckpt", archive)
    for gone in (s1, s2, tokenizer):
        shutil.rmtree(gone)
    assert equal(snapshot(restore_module(archive)), trained)

    moved = tmp_path / "moved_base"
    hf_base.rename(moved)
    with pytest.raises(UserError, match=rf"base model {hf_base} is missing .*--base DIR"):
        restore_module(archive)
    assert equal(snapshot(restore_module(archive, base_dir=str(moved))), trained)

    config = (moved / "config.json").read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05')
    (moved / "config.json").write_text(config)
    with pytest.raises(UserError, match=r"not the one this checkpoint was built on \(config.json rms_norm_eps: "
                                        r"1e-06 -> 1e-05\)"):
        restore_module(archive, base_dir=str(moved))
