"""Checkpoints hold what trained (and its optimizer state), resume exactly, and rebuild the full model."""

import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from callbacks.embedding_only import EmbeddingOnly
from lightning_modules.freeze_policy import FreezePolicyMismatchError
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.checkpoint_io import restore_module
from tests.lightning_modules.tiny_training import snapshot, tiny_module, tiny_trainer, token_loader


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = outputs["loss"].item()


def lora():
    return LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0)


def fit(tmp_path, policy, max_steps, ckpt_path=None, every=None, module=None):
    recorder = LossRecorder()
    callbacks = [policy, recorder]
    if every:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=every, save_top_k=-1))
    module = module or tiny_module()
    tiny_trainer(tmp_path, callbacks, max_steps=max_steps, enable_checkpointing=bool(every)).fit(
        module, train_dataloaders=token_loader(n_batches=6), ckpt_path=ckpt_path
    )
    return module, recorder.losses


def test_checkpoint_holds_only_trained_parameters_and_their_optimizer_state(tmp_path) -> None:
    module, _ = fit(tmp_path, lora(), max_steps=2, every=2)
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)  # zhllama checkpoints hold data only
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert set(checkpoint["state_dict"]) == trainable
    assert sum(p.numel() for p in checkpoint["state_dict"].values()) < sum(p.numel() for p in module.parameters())
    assert len(checkpoint["optimizer_states"][0]["state"]) == len(trainable)
    assert checkpoint["zhllama"]["freeze_policy"]["init_args"]["r"] == 4
    assert checkpoint["lr_schedulers"] and checkpoint["loops"]


def test_resumed_run_reaches_the_same_losses(tmp_path) -> None:
    _, uninterrupted = fit(tmp_path / "a", lora(), max_steps=6, every=3)
    _, resumed = fit(tmp_path / "b", lora(), max_steps=6, ckpt_path=tmp_path / "a" / "ckpt" / "epoch=0-step=3.ckpt")
    assert sorted(resumed) == [4, 5, 6]
    assert [resumed[s] for s in (4, 5, 6)] == [uninterrupted[s] for s in (4, 5, 6)]


def test_resuming_under_another_policy_fails_clearly(tmp_path) -> None:
    fit(tmp_path / "a", EmbeddingOnly(), max_steps=2, every=2)
    with pytest.raises(FreezePolicyMismatchError, match=r"EmbeddingOnly\(.*LoRAWithEmbeddings\("):
        fit(tmp_path / "b", lora(), max_steps=4, ckpt_path=tmp_path / "a" / "ckpt" / "last.ckpt")


def test_restore_module_rebuilds_the_trained_model(tmp_path) -> None:
    trained, _ = fit(tmp_path, lora(), max_steps=2, every=2)
    restored = restore_module(tmp_path / "ckpt" / "last.ckpt")
    expected, actual = snapshot(trained), snapshot(restored)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_stages_chain_through_init_from(tmp_path) -> None:
    stage1, _ = fit(tmp_path / "s1", EmbeddingOnly(new_rows_only=True), max_steps=2, every=2)
    stage1_ckpt = tmp_path / "s1" / "ckpt" / "last.ckpt"
    stage2, _ = fit(tmp_path / "s2", lora(), max_steps=2, every=2, module=tiny_module(init_from=str(stage1_ckpt)))
    assert stage2.original_vocab_size == stage1.original_vocab_size
    # stage 2 began from stage 1's embedding: its frozen base (transformer) equals stage 1's
    s1, s2 = snapshot(stage1), snapshot(stage2)
    assert torch.equal(s1["model.layers.0.self_attn.q_proj.weight"], s2["model.layers.0.self_attn.q_proj.weight"])
    sft = tiny_module(init_from=str(tmp_path / "s2" / "ckpt" / "last.ckpt"))
    sft.configure_model()
    merged = restore_module(tmp_path / "s2" / "ckpt" / "last.ckpt").export_model()
    for name, p in merged.named_parameters():  # SFT starts from stage 2 with its LoRA merged
        assert torch.equal(p, dict(sft.causal_lm.named_parameters())[name])


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_activation_checkpointing_with_a_frozen_embedding_trains_lora(tmp_path, precision) -> None:
    module = tiny_module(activation_checkpointing=True)
    trainer = tiny_trainer(tmp_path, [LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, train_embeddings=False)],
                           max_steps=2, precision=precision)
    module.trainer = trainer
    module.configure_model()
    before = snapshot(module)
    trainer.fit(module, train_dataloaders=token_loader())
    after = snapshot(module)
    assert module.causal_lm.is_activation_checkpointing
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.layers.0.self_attn.q_proj.lora_B.default.weight"],
                           after["model.layers.0.self_attn.q_proj.lora_B.default.weight"])


def test_restore_module_reads_an_exported_directory(tmp_path) -> None:
    fit(tmp_path, lora(), max_steps=1, every=1)
    exported = restore_module(tmp_path / "ckpt" / "last.ckpt").export_model()
    exported.save_pretrained(tmp_path / "exported")
    reloaded = restore_module(tmp_path / "exported")
    assert reloaded.freeze_policy is None
    for name, p in exported.named_parameters():
        assert torch.equal(p, dict(reloaded.causal_lm.named_parameters())[name])
    from_run_directory = dict(restore_module(tmp_path / "ckpt").export_model().named_parameters())  # newest ckpt
    assert all(torch.equal(p, from_run_directory[name]) for name, p in exported.named_parameters())
