"""Every stage under DeepSpeed ZeRO-3 (``configs/strategies/deepspeed_zero3.yaml`` on CPU through the test-only
``CPUDeepSpeedStrategy``) on 2 processes: the model is built whole and partitioned by the engine; stage 1 with
``new_rows_only`` and its new-row weight decay (applied to each rank's fp32 partition) steps as one process with
twice the batch, across a ``--ckpt_path last`` resume too, the old rows bit-identical; ``train/grad_norm`` is the
global norm; the shards consolidate into the trained parameters only, which ``zhllama export`` and ``init_from``
read; stage 2 steps as one process, and so does stage 1 with CPU offload; SFT trains from a ZeRO-3 run directory, every rank generating the samples
(each forward gathers from all) and the parameter table counting the partitioned parameters whole."""

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


def consolidated(run: Path, name: str = "last.ckpt") -> dict:
    """The run's DeepSpeed checkpoint directory ``name`` as zhllama reads it: every rank's shard consolidated."""
    from lightning_modules.deepspeed_checkpoint import read_deepspeed_checkpoint

    return read_deepspeed_checkpoint(run / "checkpoints" / name)


@pytest.fixture(scope="module")
def zero3_strategy(inputs: dict[str, Path]) -> list[str]:
    return ["--config", str(on_cpu("deepspeed_zero3.yaml", inputs["folder"]))]


@pytest.fixture(scope="module")
def zero3(inputs: dict[str, Path], stage1_args: list[str], zero3_strategy: list[str]) -> Path:
    """Stage 1 (embedding and head, ``new_rows_only``, weight decay 10) on 2 ranks × batch 1: one step, then
    resumed with ``--ckpt_path last`` for the second."""
    root = inputs["folder"] / "zero3"
    return fit_and_resume(root, *stage1_args, *zero3_strategy, strategy=None, logger=csv_logger(root))


@pytest.mark.slow
def test_zero3_steps_as_one_process_with_twice_the_batch_across_a_resume(zero3: Path, stage1_single: Path) -> None:
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):
        assert_close(consolidated(zero3, step)["state_dict"], trained(stage1_single, step))
    assert [len(steps) for steps in logged(zero3, "train/grad_norm")] == [1, 1]  # the resumed run: step 2 only
    torch.testing.assert_close(sum(logged(zero3, "train/grad_norm"), []),
                               sum(logged(stage1_single, "train/grad_norm"), []), rtol=1e-5, atol=0)


@pytest.mark.slow
def test_zero3_checkpoint_holds_trained_parameters_only_and_the_old_rows(zero3: Path) -> None:
    saved = consolidated(zero3)
    assert saved["global_step"] == 2
    record = saved["zhllama"]
    assert sorted(saved["state_dict"]) == record["trainable"] == [
        "model.lm_head.weight", "model.model.embed_tokens.weight"]
    for name, weight in start_weights().items():
        assert torch.equal(saved["state_dict"][name][: weight.shape[0]], weight)
    shards = sorted(p.name for p in (zero3 / "checkpoints" / "last.ckpt" / "checkpoint").glob("*_optim_states.pt"))
    assert len(shards) == 2


@pytest.mark.slow
def test_export_and_init_from_consolidate_the_zero3_directory(zero3: Path, tmp_path: Path) -> None:
    assert_export_and_init_from_carry(zero3, consolidated(zero3)["state_dict"], tmp_path / "export")


@pytest.mark.slow
def test_zero3_lora_stage_steps_as_one_process(
    inputs: dict[str, Path], stage2_args: list[str], stage2_single: Path, zero3_strategy: list[str]
) -> None:
    run = fit(inputs["folder"] / "zero3_stage2", *stage2_args, *zero3_strategy, strategy=None)
    saved = consolidated(run)
    assert sorted(saved["state_dict"]) == saved["zhllama"]["trainable"]
    assert_close(saved["state_dict"], trained(stage2_single))


@pytest.mark.slow
def test_zero3_with_cpu_offload_steps_as_one_process(
    inputs: dict[str, Path], stage1_args: list[str], stage1_single: Path
) -> None:
    """``deepspeed_zero3_offload.yaml``: the module's AdamW steps the partitions offloaded to host memory, and the
    new rows' decay reaches them there."""
    strategy = on_cpu("deepspeed_zero3_offload.yaml", inputs["folder"])
    run = fit(inputs["folder"] / "zero3_offload", *stage1_args, "--config", str(strategy), strategy=None)
    assert_close(consolidated(run)["state_dict"], trained(stage1_single, "epoch=0-step=1.ckpt"))


@pytest.mark.slow
def test_sft_trains_under_zero3_from_a_zero3_run_directory(
    zero3: Path, inputs: dict[str, Path], alpaca_sample: Path, zero3_strategy: list[str]
) -> None:
    run = sft_fit(inputs["folder"] / "sft_zero3", inputs, alpaca_sample, zero3, *zero3_strategy, strategy=None)
    saved = consolidated(run)
    assert saved["global_step"] == 1
    assert_sft_trained_with_samples_and_budget(run, saved["state_dict"], saved["zhllama"])
