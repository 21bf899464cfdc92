"""Every stage under DDP on 2 CPU processes over gloo, through the console script: a step of 2 ranks × batch 1
is a step of one process × batch 2 (so the ranks saw disjoint halves of it), ``--ckpt_path last`` resumes onto
the same parameters, checkpoints hold the trained parameters only, ``new_rows_only`` keeps the old rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.launch import (
    ATOL, assert_close, assert_sft_trained_with_samples_and_budget, checkpoint, fit, fit_and_resume, sft_fit,
    start_weights, trained,
)


@pytest.fixture(scope="module")
def stage1(inputs: dict[str, Path], stage1_args: list[str], stage1_single: Path) -> dict[str, Path]:
    """Stage 1 on 2 ranks × batch 1, launched by Lightning (the other tests start their ranks with torchrun): one
    step, then resumed for the second; and the one-process run."""
    ddp = fit_and_resume(inputs["folder"] / "stage1_ddp", *stage1_args, torchrun=False)
    return {"single": stage1_single, "ddp": ddp}


@pytest.mark.slow
def test_stage1_two_ranks_step_as_one_process_with_twice_the_batch(stage1: dict[str, Path]) -> None:
    assert checkpoint(stage1["ddp"])["global_step"] == 2
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):  # the 2-rank run's second step ran after `--ckpt_path last`
        assert_close(trained(stage1["ddp"], step), trained(stage1["single"], step))
    # the step is large against the tolerance: ranks that saw each other's data would not match
    first = trained(stage1["single"], "epoch=0-step=1.ckpt")
    for name, weight in start_weights().items():
        new_rows = first[name][weight.shape[0]:]
        assert (new_rows - weight.mean(0)).abs().max() > 100 * ATOL  # new rows start at the old rows' mean


@pytest.mark.slow
def test_stage1_new_rows_only_keeps_old_rows_and_saves_trained_parameters_only(stage1: dict[str, Path]) -> None:
    state = trained(stage1["ddp"])
    assert sorted(state) == ["model.lm_head.weight", "model.model.embed_tokens.weight"]
    for name, weight in start_weights().items():
        original = weight.shape[0]
        assert state[name].shape[0] > original
        assert torch.equal(state[name][:original], weight)


@pytest.mark.slow
def test_stage2_lora_two_ranks_step_as_one_process(
    inputs: dict[str, Path], stage2_args: list[str], stage2_single: Path
) -> None:
    ddp = trained(fit(inputs["folder"] / "stage2_ddp", *stage2_args))
    assert_close(ddp, trained(stage2_single))
    assert any(name.endswith("lm_head.weight") for name in ddp)
    assert not any("base_layer" in name for name in ddp)
    assert max(ddp[name].abs().max() for name in ddp if "lora_B" in name) > 100 * ATOL  # B starts at zero


@pytest.mark.slow
def test_sft_trains_under_ddp(stage1: dict[str, Path], inputs: dict[str, Path], alpaca_sample: Path) -> None:
    """SFT's loss is a token mean per rank, so 2 ranks equal one process only for equal label counts: this
    checks that it trains, what its checkpoint holds, and rank 0's samples and parameter table."""
    run = sft_fit(inputs["folder"] / "sft_ddp", inputs, alpaca_sample, stage1["ddp"])
    saved = checkpoint(run)
    assert saved["global_step"] == 1
    assert_sft_trained_with_samples_and_budget(run, saved["state_dict"], saved["zhllama"])
