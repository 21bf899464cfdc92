"""What each freeze policy lets change in a few real optimizer steps (weight decay on, so decay leaks show)."""

import pytest
import torch

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.freeze_policy import policy_from_record
from tests.lightning_modules.tiny_training import ORIGINAL_VOCAB, snapshot, tiny_module, tiny_trainer, token_loader
from tokenization.errors import UserError

EMBED, HEAD = "model.embed_tokens.weight", "lm_head.weight"


def train(tmp_path, policy, **module_args):
    module = tiny_module(weight_decay=0.1, **module_args)
    trainer = tiny_trainer(tmp_path, [policy], max_steps=3)
    module.trainer = trainer  # so configure_model finds the policy before we snapshot
    module.configure_model()
    before = snapshot(module)
    trainer.fit(module, train_dataloaders=token_loader())
    return module, before, snapshot(module)


def changed(before, after) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_embedding_only_changes_only_the_embedding(tmp_path) -> None:
    _, before, after = train(tmp_path, EmbeddingOnly())
    assert changed(before, after) == {EMBED}
    assert not torch.equal(before[EMBED][:ORIGINAL_VOCAB], after[EMBED][:ORIGINAL_VOCAB])


def test_embedding_only_new_rows_only_keeps_original_rows_bit_identical(tmp_path) -> None:
    _, before, after = train(tmp_path, EmbeddingOnly(new_rows_only=True, include_lm_head=True))
    assert changed(before, after) == {EMBED, HEAD}
    for name in (EMBED, HEAD):
        assert torch.equal(before[name][:ORIGINAL_VOCAB], after[name][:ORIGINAL_VOCAB])
        assert not torch.equal(before[name][ORIGINAL_VOCAB:], after[name][ORIGINAL_VOCAB:])


def test_lora_with_embeddings_keeps_base_weights_and_moves_lora_embedding_head(tmp_path) -> None:
    module, before, after = train(tmp_path, LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0))
    moved = changed(before, after)
    base = {n for n in before if "lora_" not in n}
    assert base & moved == {EMBED, HEAD}
    assert {n for n in moved if "lora_B" in n} == {n for n in before if "lora_B" in n}
    # one copy of embedding and head: no peft modules_to_save duplicates
    assert not [n for n, _ in module.named_parameters() if "modules_to_save" in n or "original_module" in n]


def test_lora_new_rows_only(tmp_path) -> None:
    _, before, after = train(tmp_path, LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, new_rows_only=True))
    for name in (EMBED, HEAD):
        assert torch.equal(before[name][:ORIGINAL_VOCAB], after[name][:ORIGINAL_VOCAB])
        assert not torch.equal(before[name][ORIGINAL_VOCAB:], after[name][ORIGINAL_VOCAB:])


def test_new_rows_only_without_new_rows_is_an_error() -> None:
    module = tiny_module(original_vocab_size=None)
    module.configure_model()
    with pytest.raises(UserError, match="nothing would train"):
        module.apply_freeze_policy(EmbeddingOnly(new_rows_only=True))


@pytest.mark.parametrize("class_path", ["os.system", "callbacks.no_such_module.Policy", "callbacks.embedding_only.torch"])
def test_a_recorded_policy_never_imports_an_arbitrary_module(class_path: str) -> None:
    """A checkpoint's freeze-policy record is user input: only zhllama's own policies (or already imported
    ones) are rebuilt from it, and anything else is one line."""
    with pytest.raises(UserError, match="freeze policy"):
        policy_from_record({"class_path": class_path, "init_args": {}})
    rebuilt = policy_from_record({"class_path": "callbacks.embedding_only.EmbeddingOnly", "init_args": {}})
    assert isinstance(rebuilt, EmbeddingOnly)
