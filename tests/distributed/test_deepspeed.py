"""Stages 1 and 2 under DeepSpeed ZeRO-2 (the ``configs/strategies/deepspeed_zero2.yaml`` fragment, run on CPU through
the test-only ``CPUDeepSpeedStrategy``) on 1 and 2 processes: each step is the one-process step of the same
global batch, the checkpoint directory holds the trained parameters only, ``new_rows_only`` keeps the old rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from tests.distributed.launch import (
    CPU_DEEPSPEED, PROJECT_ROOT, assert_close, fit, start_weights, trained,
)

pytest.importorskip("deepspeed")

STRATEGIES = PROJECT_ROOT / "configs" / "strategies"


def on_cpu(fragment: str, folder: Path) -> Path:
    """The product's strategy fragment with the test-only CPU strategy class in place of Lightning's."""
    config = yaml.safe_load((STRATEGIES / fragment).read_text(encoding="utf-8"))
    config["trainer"]["strategy"]["class_path"] = CPU_DEEPSPEED
    path = folder / f"cpu_{fragment}"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def engine_module(run: Path, name: str = "last.ckpt") -> dict:
    """The DeepSpeed checkpoint directory's model states file: the module's saved tensors and Lightning's state."""
    return torch.load(run / "checkpoints" / name / "checkpoint" / "mp_rank_00_model_states.pt", weights_only=True)


@pytest.fixture(scope="module")
def zero2(inputs: dict[str, Path], stage1_args: list[str]) -> dict[int, Path]:
    """Stage 1 under ZeRO-2 for 2 steps: 1 rank × batch 2 and 2 ranks × batch 1."""
    strategy = on_cpu("deepspeed_zero2.yaml", inputs["folder"])
    return {ranks: fit(inputs["folder"] / f"zero2_{ranks}", *stage1_args, "--config", str(strategy), strategy=None,
                       devices=ranks, batch_size=2 // ranks, max_steps=2) for ranks in (1, 2)}


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_zero2_steps_as_one_process(zero2: dict[int, Path], stage1_single: Path, ranks: int) -> None:
    for step in ("epoch=0-step=1.ckpt", "last.ckpt"):
        assert_close(engine_module(zero2[ranks], step)["module"], trained(stage1_single, step))


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
    from transformers import AutoModelForCausalLM

    from cli.export import main as export_main
    from lightning_modules.causal_lm import CausalLMModule

    directory = zero2[2] / "checkpoints" / "last.ckpt"
    trained_rows = engine_module(zero2[2])["module"]  # fp32 training: the engine's module is its master copy
    assert export_main(["--ckpt", str(directory), "--output", str(tmp_path / "export"), "--dtype", "fp32"]) == 0
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "export")
    following = CausalLMModule(init_from=str(directory))
    following.configure_model()
    for model in (exported, following.causal_lm):
        assert torch.equal(model.get_input_embeddings().weight, trained_rows["model.model.embed_tokens.weight"])
        assert torch.equal(model.get_output_embeddings().weight, trained_rows["model.lm_head.weight"])
