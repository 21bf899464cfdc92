"""Every stage under DeepSpeed ZeRO-3 (``configs/strategies/deepspeed_zero3.yaml`` on CPU through the test-only
``CPUDeepSpeedStrategy``): the model is built whole and partitioned by the engine, 2 ranks × batch 1 step as
1 rank × batch 2 (stage 1) or one plain process (stage 2), ``train/grad_norm`` is the global norm, each rank's
shard consolidates into the trained parameters only, ``zhllama export`` and ``init_from`` read a run or
checkpoint directory of it, and ``new_rows_only`` with weight decay is refused in one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.cli.tiny_fit import TINY, tiny_fit_args
from tests.distributed.cpu_deepspeed import on_cpu
from tests.distributed.launch import (
    ATOL, EMBEDDING_ONLY, LORA, PROJECT_ROOT, ZHLLAMA, assert_close, assert_export_and_init_from_carry,
    callbacks_config, csv_logger, fit, logged,
    sft_args, start_weights, trained,
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
def zero3(inputs: dict[str, Path], zero3_strategy: list[str]) -> dict[int, Path]:
    """Stage 1 (embedding and head, all rows) under ZeRO-3 for 2 steps: 1 rank × batch 2 and 2 ranks × batch 1."""
    folder = inputs["folder"]
    policy = callbacks_config(folder, EMBEDDING_ONLY, include_lm_head=True)
    args = [*tiny_fit_args("pt_embed.yaml", inputs["tokenizer"], inputs["corpus"], inputs["cache"]),
            "--model.model_config", TINY, "--config", str(policy), *zero3_strategy]
    return {ranks: fit(folder / f"zero3_{ranks}", *args, strategy=None, devices=ranks, batch_size=2 // ranks,
                       max_steps=2, logger=csv_logger(folder / f"zero3_{ranks}")) for ranks in (1, 2)}


@pytest.mark.slow
def test_zero3_two_ranks_step_as_one_rank_with_twice_the_batch(zero3: dict[int, Path]) -> None:
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):
        assert_close(consolidated(zero3[2], step)["state_dict"], consolidated(zero3[1], step)["state_dict"])
    first = consolidated(zero3[2], "epoch=0-step=1.ckpt")["state_dict"]
    for name, weight in start_weights().items():  # the step is large against the tolerance
        assert (first[name][: weight.shape[0]] - weight).abs().max() > 100 * ATOL
    one_rank, two_ranks = (sum(logged(zero3[ranks], "train/grad_norm"), []) for ranks in (1, 2))
    assert len(one_rank) == 2 and min(one_rank) > 0
    torch.testing.assert_close(two_ranks, one_rank, rtol=1e-5, atol=0)


@pytest.mark.slow
def test_zero3_checkpoint_holds_trained_parameters_only(zero3: dict[int, Path]) -> None:
    saved = consolidated(zero3[2])
    assert saved["global_step"] == 2
    record = saved["zhllama"]
    assert sorted(saved["state_dict"]) == record["trainable"] == [
        "model.lm_head.weight", "model.model.embed_tokens.weight"]
    assert saved["state_dict"]["model.lm_head.weight"].shape[0] == record["vocab_size"] > record["original_vocab_size"]
    shards = sorted(p.name for p in (zero3[2] / "checkpoints" / "last.ckpt" / "checkpoint").glob("*_optim_states.pt"))
    assert len(shards) == 2


@pytest.mark.slow
def test_export_and_init_from_consolidate_the_zero3_directory(zero3: dict[int, Path], tmp_path: Path) -> None:
    assert_export_and_init_from_carry(zero3[2], consolidated(zero3[2])["state_dict"], tmp_path / "export")


@pytest.mark.slow
def test_zero3_lora_stage_steps_as_one_process(
    inputs: dict[str, Path], stage2_args: list[str], stage2_single: Path, zero3_strategy: list[str]
) -> None:
    run = fit(inputs["folder"] / "zero3_stage2", *stage2_args, *zero3_strategy, strategy=None)
    saved = consolidated(run)
    assert sorted(saved["state_dict"]) == saved["zhllama"]["trainable"]
    assert_close(saved["state_dict"], trained(stage2_single))


@pytest.mark.slow
def test_sft_trains_under_zero3_from_a_zero3_run_directory(
    zero3: dict[int, Path], inputs: dict[str, Path], alpaca_sample: Path, zero3_strategy: list[str]
) -> None:
    folder = inputs["folder"]
    policy = callbacks_config(folder, LORA, r=4, alpha=8, dropout=0.0)
    run = fit(folder / "sft_zero3", *sft_args(inputs["tokenizer"], alpaca_sample), "--model.init_from",
              str(zero3[2]), "--config", str(policy), *zero3_strategy, strategy=None)
    saved = consolidated(run)
    assert saved["global_step"] == 1
    assert sorted(saved["state_dict"]) == saved["zhllama"]["trainable"]
    assert max(w.abs().max() for name, w in saved["state_dict"].items() if "lora_B" in name) > 100 * ATOL


@pytest.mark.slow
def test_zero3_refuses_new_rows_only_with_weight_decay_in_one_line(
    inputs: dict[str, Path], stage1_args: list[str], zero3_strategy: list[str]
) -> None:
    root = inputs["folder"] / "zero3_new_rows_only"
    command = [str(ZHLLAMA), "fit", *stage1_args, *zero3_strategy, "--trainer.default_root_dir", str(root),
               "--trainer.devices", "1", "--trainer.max_steps", "1", "--trainer.logger", "false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(command, cwd=inputs["folder"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("zhllama fit: new_rows_only with weight_decay is not "
                                                          "supported under DeepSpeed ZeRO-3")
