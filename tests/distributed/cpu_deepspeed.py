"""DeepSpeed on CPU processes, for tests only: Lightning's ``DeepSpeedStrategy`` refuses any accelerator but CUDA
and checks device indices against the local ranks, while DeepSpeed itself runs on CPU (its CPU accelerator,
gloo). This subclass sets up the environment as DDP does, on ``torch.device("cpu", i)`` devices."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy

from tests.distributed.launch import CPU_DEEPSPEED, PROJECT_ROOT

STRATEGIES = PROJECT_ROOT / "configs" / "strategies"


class CPUDeepSpeedStrategy(DeepSpeedStrategy):
    """``DeepSpeedStrategy`` with the arguments of a config fragment, run on CPU processes over gloo."""

    def setup_environment(self) -> None:
        assert self.parallel_devices is not None
        self.parallel_devices = [torch.device("cpu", i) for i in range(len(self.parallel_devices))]
        DDPStrategy.setup_environment(self)


def on_cpu(fragment: str, folder: Path) -> Path:
    """The product's strategy fragment ``configs/strategies/<fragment>`` with ``CPUDeepSpeedStrategy`` in place of
    Lightning's class, written into ``folder``."""
    config = yaml.safe_load((STRATEGIES / fragment).read_text(encoding="utf-8"))
    config["trainer"]["strategy"]["class_path"] = CPU_DEEPSPEED
    path = folder / f"cpu_{fragment}"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
