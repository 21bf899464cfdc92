"""Every stage under DeepSpeed ZeRO-2 (the ``configs/strategies/deepspeed_zero2.yaml`` fragment, run on CPU through
the test-only ``CPUDeepSpeedStrategy``) on 1 and 2 processes: each step is the one-process step of the same
global batch, with gradient accumulation or across a ``--ckpt_path last`` resume; ``train/grad_norm`` is the
engine's global norm; the checkpoint directory holds the trained parameters only, ``new_rows_only`` keeps the
old rows; SFT trains from a ZeRO-2 run directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.cpu_deepspeed import on_cpu
from tests.distributed.launch import (
    assert_close, assert_export_and_init_from_carry, assert_sft_trained_with_samples_and_budget,
    csv_logger, fit, fit_and_resume, logged, sft_fit, start_weights, trained,
)

pytest.importorskip("deepspeed")


def engine_module(run: Path, name: str = "last.ckpt") -> dict:
    """The DeepSpeed checkpoint directory's model states file: the module's saved tensors and Lightning's state."""
    return torch.load(run / "checkpoints" / name / "checkpoint" / "mp_rank_00_model_states.pt", weights_only=True)


@pytest.fixture(scope="module")
def zero2(inputs: dict[str, Path], stage1_args: list[str]) -> dict[int, Path]:
    """Stage 1 under ZeRO-2 for 2 steps of 2 sequences: 1 rank accumulating 2 batches of 1 in one run (DeepSpeed
    calls the optimizer hooks at each, steps at the second); 2 ranks × batch 1 stopped after step 1, then
    resumed with ``--ckpt_path last`` for step 2."""
    args = [*stage1_args, "--config", str(on_cpu("deepspeed_zero2.yaml", inputs["folder"]))]
    runs = {}
    for ranks in (1, 2):
        root = inputs["folder"] / f"zero2_{ranks}"
        options = {"strategy": None, "devices": ranks, "logger": csv_logger(root)}
        if ranks == 1:
            runs[1] = fit(root, *args, "--trainer.accumulate_grad_batches", "2", max_steps=2, **options)
        else:
            runs[2] = fit_and_resume(root, *args, **options)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_zero2_steps_as_one_process(zero2: dict[int, Path], stage1_single: Path, ranks: int) -> None:
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):
        assert_close(engine_module(zero2[ranks], step)["module"], trained(stage1_single, step))


@pytest.mark.slow
def test_zero2_ckpt_path_last_resumes_from_the_newest_checkpoint_directory(zero2: dict[int, Path]) -> None:
    """The second invocation found ``last.ckpt/`` and trained step 2 only (a fresh start would log two steps);
    that step's parameters are those of the uninterrupted runs (``test_zero2_steps_as_one_process``)."""
    assert [len(steps) for steps in logged(zero2[2], "train/grad_norm")] == [1, 1]
    assert engine_module(zero2[2])["global_step"] == 2


@pytest.mark.slow
def test_zero2_grad_norm_is_the_global_norm_of_all_ranks(zero2: dict[int, Path], stage1_single: Path) -> None:
    """DeepSpeed moves the gradients into its partitions: the logged norm is the engine's, over every rank's
    partition of the averaged gradient, so 2 ranks × batch 1 and 1 rank accumulating 2 batches of 1 log what one
    process with batch 2 logs (the loss is divided by the accumulation once, not by Lightning and DeepSpeed)."""
    single = sum(logged(stage1_single, "train/grad_norm"), [])
    assert len(single) == 2 and min(single) > 0
    for ranks in (1, 2):
        torch.testing.assert_close(sum(logged(zero2[ranks], "train/grad_norm"), []), single, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_zero2_lora_stage_steps_as_one_process(
    inputs: dict[str, Path], stage2_args: list[str], stage2_single: Path
) -> None:
    strategy = on_cpu("deepspeed_zero2.yaml", inputs["folder"])
    run = fit(inputs["folder"] / "zero2_stage2", *stage2_args, "--config", str(strategy), strategy=None)
    saved = engine_module(run)
    assert sorted(saved["module"]) == sorted(saved["zhllama"]["trainable"])
    assert_close(saved["module"], trained(stage2_single))


@pytest.mark.slow
def test_zero2_checkpoint_holds_trained_parameters_only_and_old_rows(zero2: dict[int, Path]) -> None:
    saved = engine_module(zero2[2])
    assert saved["global_step"] == 2
    assert sorted(saved["module"]) == sorted(saved["zhllama"]["trainable"]) == [
        "model.lm_head.weight", "model.model.embed_tokens.weight"]
    for name, weight in start_weights().items():
        assert torch.equal(saved["module"][name][: weight.shape[0]], weight)


@pytest.mark.slow
def test_export_and_init_from_read_the_deepspeed_directory(zero2: dict[int, Path], tmp_path: Path) -> None:
    """``zhllama export --ckpt`` of the run directory finds its newest checkpoint directory; ``init_from`` names
    that directory itself."""
    trained_rows = engine_module(zero2[2])["module"]  # fp32 training: the engine's module is its master copy
    assert_export_and_init_from_carry(zero2[2], trained_rows, tmp_path / "export")


@pytest.mark.slow
def test_sft_trains_under_zero2_from_a_zero2_run_directory(
    zero2: dict[int, Path], inputs: dict[str, Path], alpaca_sample: Path
) -> None:
    strategy = on_cpu("deepspeed_zero2.yaml", inputs["folder"])
    run = sft_fit(inputs["folder"] / "sft_zero2", inputs, alpaca_sample, zero2[2], "--config", str(strategy),
                  strategy=None)
    saved = engine_module(run)
    assert saved["global_step"] == 1
    assert_sft_trained_with_samples_and_budget(run, saved["module"], saved["zhllama"])
