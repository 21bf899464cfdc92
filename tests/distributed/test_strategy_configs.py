"""The strategy fragments under configs/strategies/ parse after a stage config, through the real CLI parser: the
DeepSpeed ones select DeepSpeed with checkpoints of the trained parameters only, ``fsdp2.yaml`` selects
Lightning's ModelParallelStrategy for FSDP2 alone, saving one consolidated checkpoint file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.lightning import main
from tests.distributed.launch import PROJECT_ROOT

STRATEGIES = PROJECT_ROOT / "configs" / "strategies"
FRAGMENTS = sorted(STRATEGIES.glob("*.yaml"))
DEEPSPEED_FRAGMENTS = [p for p in FRAGMENTS if p.name.startswith("deepspeed_")]
STAGE = PROJECT_ROOT / "configs" / "tiny" / "pt_lora.yaml"
DEEPSPEED_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [^]]*\] \[[A-Z]+\]")  # deepspeed logs to stdout on import

needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="the deepspeed extra is not installed")


def resolved_after_stage(fragment: Path, capsys: pytest.CaptureFixture) -> dict[str, Any]:
    """The config ``zhllama fit --config STAGE --config fragment --print_config`` resolves to."""
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(STAGE), "--config", str(fragment), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = "\n".join(line for line in capsys.readouterr().out.splitlines() if not DEEPSPEED_LOG.match(line))
    resolved = yaml.safe_load(printed)
    assert resolved["model"]["init_from"] and resolved["trainer"]["callbacks"]  # the stage config is still there
    expected = yaml.safe_load(fragment.read_text(encoding="utf-8"))["trainer"]["strategy"]
    strategy = resolved["trainer"]["strategy"]
    assert strategy["class_path"] == expected["class_path"]
    assert expected["init_args"].items() <= strategy["init_args"].items()
    return strategy


def test_the_anchors_three_strategies_and_fsdp2_are_there() -> None:
    assert [p.name for p in FRAGMENTS] == ["deepspeed_zero2.yaml", "deepspeed_zero3.yaml",
                                           "deepspeed_zero3_offload.yaml", "fsdp2.yaml"]


@needs_deepspeed
@pytest.mark.parametrize("fragment", DEEPSPEED_FRAGMENTS, ids=lambda p: p.name)
def test_fragment_selects_deepspeed_after_a_stage_config(fragment: Path, capsys: pytest.CaptureFixture) -> None:
    strategy = resolved_after_stage(fragment, capsys)
    assert strategy["class_path"] == "lightning.pytorch.strategies.DeepSpeedStrategy"
    assert strategy["init_args"]["exclude_frozen_parameters"] is True


def test_fsdp2_fragment_selects_data_parallel_sharding_and_one_checkpoint_file(capsys: pytest.CaptureFixture) -> None:
    strategy = resolved_after_stage(STRATEGIES / "fsdp2.yaml", capsys)
    assert strategy["class_path"] == "lightning.pytorch.strategies.ModelParallelStrategy"
    assert strategy["init_args"]["tensor_parallel_size"] == 1
    assert strategy["init_args"]["save_distributed_checkpoint"] is False
