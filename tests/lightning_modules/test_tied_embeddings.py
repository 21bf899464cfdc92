"""A model whose head is tied to its embedding (SmolLM2, ``tie_word_embeddings: true``): under each freeze policy
the one shared weight trains once, is saved once, restores tied, and ``new_rows_only`` keeps its old rows."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.checkpoint_io import restore_module
from lightning_modules.model_loading import tiny_llama_config
from tests.lightning_modules.tiny_training import ORIGINAL_VOCAB, VOCAB, tiny_module, tiny_trainer, token_loader

POLICIES = {
    "embedding_only": lambda: EmbeddingOnly(new_rows_only=True),  # include_lm_head false: the tied head trains anyway
    "lora_embedding_only": lambda: LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, train_lm_head=False,
                                                      new_rows_only=True),
    "lora_head_only": lambda: LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, train_embeddings=False,
                                                 new_rows_only=True),
}


def shared_weight(module) -> torch.Tensor:
    lm = module.causal_lm
    embedding, head = lm.get_input_embeddings().weight, lm.get_output_embeddings().weight
    assert embedding is head, "the embedding and the head are no longer one tied weight"
    return embedding


@pytest.mark.parametrize("policy", POLICIES)
def test_a_tied_embedding_trains_once_saves_once_and_restores_tied(tmp_path, policy: str) -> None:
    config = {**tiny_llama_config(vocab_size=VOCAB, max_position_embeddings=64), "tie_word_embeddings": True}
    untrained = tiny_module(model_config=config)
    untrained.configure_model()  # the same seeded init the trained module starts from
    before = shared_weight(untrained).detach().clone()
    module = tiny_module(model_config=config)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    tiny_trainer(tmp_path, [POLICIES[policy](), checkpoints], max_steps=2, enable_checkpointing=True).fit(
        module, train_dataloaders=token_loader()
    )
    after = shared_weight(module)
    assert torch.equal(after[:ORIGINAL_VOCAB], before[:ORIGINAL_VOCAB])  # new_rows_only: old rows bit-identical
    assert not torch.equal(after[ORIGINAL_VOCAB:], before[ORIGINAL_VOCAB:])

    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    vocabulary_tensors = [k for k in checkpoint["state_dict"] if "embed_tokens" in k or "lm_head" in k]
    assert len(vocabulary_tensors) == 1 and vocabulary_tensors[0].endswith("embed_tokens.weight")  # saved once
    trainable = [p for p in module.parameters() if p.requires_grad]  # parameters() lists a tied weight once
    assert len(checkpoint["optimizer_states"][0]["state"]) == len(trainable)  # one AdamW state: one update a step

    restored = restore_module(tmp_path / "ckpt" / "last.ckpt")
    assert torch.equal(shared_weight(restored), after)
    exported = restored.export_model()
    assert exported.config.tie_word_embeddings and exported.lm_head.weight is exported.model.embed_tokens.weight
