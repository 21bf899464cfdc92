"""The strategy fragments under configs/strategies/ parse after a stage config, through the real CLI parser, and
select DeepSpeed with checkpoints of the trained parameters only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cli.lightning import main
from tests.distributed.launch import PROJECT_ROOT

FRAGMENTS = sorted((PROJECT_ROOT / "configs" / "strategies").glob("*.yaml"))
STAGE = PROJECT_ROOT / "configs" / "tiny" / "pt_lora.yaml"
DEEPSPEED_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [^]]*\] \[[A-Z]+\]")  # deepspeed logs to stdout on import

pytest.importorskip("deepspeed")


def test_the_anchors_three_strategies_are_there() -> None:
    assert [p.name for p in FRAGMENTS] == ["deepspeed_zero2.yaml", "deepspeed_zero3.yaml",
                                           "deepspeed_zero3_offload.yaml"]


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: p.name)
def test_fragment_selects_deepspeed_after_a_stage_config(fragment: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(STAGE), "--config", str(fragment), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = "\n".join(line for line in capsys.readouterr().out.splitlines() if not DEEPSPEED_LOG.match(line))
    resolved = yaml.safe_load(printed)
    strategy = resolved["trainer"]["strategy"]
    assert strategy["class_path"] == "lightning.pytorch.strategies.DeepSpeedStrategy"
    assert strategy["init_args"]["exclude_frozen_parameters"] is True
    expected = yaml.safe_load(fragment.read_text(encoding="utf-8"))["trainer"]["strategy"]["init_args"]
    assert expected.items() <= strategy["init_args"].items()
    assert resolved["model"]["init_from"] and resolved["trainer"]["callbacks"]  # the stage config is still there
