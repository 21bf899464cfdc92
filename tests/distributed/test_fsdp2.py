"""Every stage under FSDP2 (``configs/strategies/fsdp2.yaml``: Lightning's ModelParallelStrategy, each decoder
layer and then the module sharded by ``fully_shard``) on 2 CPU processes over gloo, through the console script: a
step of 2 ranks × batch 1 is a step of one process × batch 2, ``--ckpt_path last`` resumes onto the same
parameters, ``new_rows_only`` keeps the old rows although each rank holds half of them, the checkpoint is one
file of the trained parameters that ``zhllama export`` and ``init_from`` read, and SFT trains from the run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_modules.fsdp2_sharding import shard_fully
from tokenization.errors import UserError
from tests.distributed.launch import (
    ATOL, PROJECT_ROOT, assert_close, assert_export_and_init_from_carry,
    assert_sft_trained_with_samples_and_budget, checkpoint, fit, fit_and_resume, sft_fit, start_weights, trained,
)

#: The product's fragment, its data-parallel size set to the 2 processes.
FSDP2 = ("--config", str(PROJECT_ROOT / "configs" / "strategies" / "fsdp2.yaml"),
         "--trainer.strategy.init_args.data_parallel_size", "2")


@pytest.fixture(scope="module")
def stage1(inputs: dict[str, Path], stage1_args: list[str]) -> Path:
    """Stage 1 under FSDP2 on 2 ranks × batch 1: one step, then resumed with ``--ckpt_path last`` for the second."""
    return fit_and_resume(inputs["folder"] / "stage1_fsdp2", *stage1_args, *FSDP2, strategy=None)


@pytest.mark.slow
def test_stage1_two_ranks_step_as_one_process_with_twice_the_batch(stage1: Path, stage1_single: Path) -> None:
    assert checkpoint(stage1)["global_step"] == 2
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):  # the second step ran after `--ckpt_path last`
        assert_close(trained(stage1, step), trained(stage1_single, step))


@pytest.mark.slow
def test_stage1_checkpoint_is_one_file_of_trained_parameters_with_the_old_rows_kept(stage1: Path) -> None:
    saved = checkpoint(stage1)
    assert (stage1 / "checkpoints" / "last.ckpt").is_file()
    assert sorted(saved["state_dict"]) == sorted(saved["zhllama"]["trainable"]) == [
        "model.lm_head.weight", "model.model.embed_tokens.weight"]
    for name, weight in start_weights().items():
        original = weight.shape[0]
        assert torch.equal(saved["state_dict"][name][:original], weight)
        # the new rows moved (and rank 1's block holds old and new rows: the row mask is offset per shard)
        assert (saved["state_dict"][name][original:] - weight.mean(0)).abs().max() > 100 * ATOL


@pytest.mark.slow
def test_stage2_lora_two_ranks_step_as_one_process(
    inputs: dict[str, Path], stage2_args: list[str], stage2_single: Path
) -> None:
    fsdp2 = trained(fit(inputs["folder"] / "stage2_fsdp2", *stage2_args, *FSDP2, strategy=None))
    assert_close(fsdp2, trained(stage2_single))
    assert any(name.endswith("lm_head.weight") for name in fsdp2)
    assert not any("base_layer" in name for name in fsdp2)
    assert max(fsdp2[name].abs().max() for name in fsdp2 if "lora_B" in name) > 100 * ATOL  # B starts at zero


@pytest.mark.slow
def test_export_and_init_from_read_the_fsdp2_checkpoint(stage1: Path, tmp_path: Path) -> None:
    assert_export_and_init_from_carry(stage1, trained(stage1), tmp_path / "export")


@pytest.mark.slow
def test_sft_trains_under_fsdp2_from_an_fsdp2_run_directory(
    stage1: Path, inputs: dict[str, Path], alpaca_sample: Path
) -> None:
    """Every rank generates the samples: the root unit (embedding, head) is gathered for generation."""
    run = sft_fit(inputs["folder"] / "sft_fsdp2", inputs, alpaca_sample, stage1, *FSDP2, strategy=None)
    saved = checkpoint(run)
    assert saved["global_step"] == 1
    assert_sft_trained_with_samples_and_budget(run, saved["state_dict"], saved["zhllama"])


def test_tensor_parallel_mesh_is_refused_in_one_line() -> None:
    """A mesh with 2 tensor-parallel ranks would give both the same batches (Lightning's sampler splits the data
    over the data-parallel ranks only) while FSDP2 shards over data parallelism alone."""
    mesh = {"data_parallel": SimpleNamespace(size=lambda: 1), "tensor_parallel": SimpleNamespace(size=lambda: 2)}
    with pytest.raises(UserError, match="tensor_parallel_size 2.*data_parallel_size"):
        shard_fully(nn.Linear(2, 2), [], mesh, "32-true")
