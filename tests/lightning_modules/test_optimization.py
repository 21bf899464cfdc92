import pytest
import torch
from torch import nn

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.optimization import adamw, cosine_with_warmup, parameter_groups
from tests.lightning_modules.tiny_training import ORIGINAL_VOCAB, snapshot, tiny_module, tiny_trainer, token_loader
from tokenization.errors import UserError


def test_no_decay_on_vectors_and_frozen_parameters_are_left_out() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[2].requires_grad_(False)
    decay, plain = parameter_groups(model.named_parameters(), weight_decay=0.1)
    assert decay["params"] == [model[0].weight] and decay["weight_decay"] == 0.1
    assert {id(p) for p in plain["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    assert plain["weight_decay"] == 0.0
    with pytest.raises(UserError, match="nothing to train"):
        adamw(parameter_groups(nn.Linear(2, 2).requires_grad_(False).named_parameters(), 0.1), 1e-3, (0.9, 0.999), 1e-8)


def test_cosine_with_warmup_shape() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = cosine_with_warmup(optimizer, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    lrs = []
    for _ in range(111):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5) and lrs[110] == pytest.approx(0.1)


@pytest.mark.parametrize("policy", [EmbeddingOnly(new_rows_only=True, include_lm_head=True),
                                    LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, new_rows_only=True)])
def test_new_rows_decay_as_adamw_decays_them_and_old_rows_stay_bit_identical(tmp_path, policy) -> None:
    """One step from the same start: with ``new_rows_only`` the new rows must move exactly as they do when torch's
    AdamW trains and decays the whole matrix (Adam is element-wise and a new row's gradient is the same)."""
    weight_decay = 5.0  # lr 1e-2: new rows shrink by 5% in the step, far above rounding
    rows_only = train_one_step(tmp_path / "rows", policy, weight_decay)
    whole = train_one_step(tmp_path / "whole", type(policy)(**{**policy.init_args(), "new_rows_only": False}), weight_decay)
    start = tiny_module()
    start.configure_model()
    start = snapshot(start)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(rows_only[name][:ORIGINAL_VOCAB], start[name][:ORIGINAL_VOCAB])
        torch.testing.assert_close(rows_only[name][ORIGINAL_VOCAB:], whole[name][ORIGINAL_VOCAB:], rtol=1e-6, atol=1e-9)


def train_one_step(root, policy, weight_decay: float) -> dict[str, torch.Tensor]:
    module = tiny_module(weight_decay=weight_decay)
    tiny_trainer(root, [policy], max_steps=1).fit(module, train_dataloaders=token_loader(n_batches=1))
    return snapshot(module)


@pytest.mark.parametrize("precision, fused", [("bf16-mixed", False), ("32-true", True)])
def test_clipping_under_mixed_precision_gets_an_optimizer_lightning_can_clip(tmp_path, precision, fused) -> None:
    """Lightning's mixed precision refuses to clip a fused optimizer's gradients: such a run gets foreach AdamW
    (and trains), every other run the fused one."""
    module = tiny_module()
    trainer = tiny_trainer(tmp_path, [EmbeddingOnly()], max_steps=1, precision=precision, gradient_clip_val=1.0)
    trainer.fit(module, train_dataloaders=token_loader())
    assert trainer.global_step == 1
    assert trainer.optimizers[0].defaults["fused"] is fused
