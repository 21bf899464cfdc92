"""DeepSpeed on CPU processes, for tests only: Lightning's ``DeepSpeedStrategy`` refuses any accelerator but CUDA
and checks device indices against the local ranks, while DeepSpeed itself runs on CPU (its CPU accelerator,
gloo). This subclass sets up the environment as DDP does, on ``torch.device("cpu", i)`` devices."""

from __future__ import annotations

import torch
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy


class CPUDeepSpeedStrategy(DeepSpeedStrategy):
    """``DeepSpeedStrategy`` with the arguments of a config fragment, run on CPU processes over gloo."""

    def setup_environment(self) -> None:
        assert self.parallel_devices is not None
        self.parallel_devices = [torch.device("cpu", i) for i in range(len(self.parallel_devices))]
        DDPStrategy.setup_environment(self)
