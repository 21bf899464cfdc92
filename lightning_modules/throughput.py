"""Training throughput over a rolling window of steps, timed between device-synchronised points.

A GPU runs a step asynchronously: reading the clock without synchronising measures the kernel launches, not the
work. Each step is timed from the end of the previous one (so data loading and the optimizer count), or from its
own start after a pause such as validation; rates are the window's totals over its total time, as Lightning's
``Throughput`` computes them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing is queued on a CPU)."""
    if device.type not in ("cpu", "meta"):
        torch.accelerator.synchronize(device)


class RollingThroughput:
    def __init__(self, window: int = 20, clock: Callable[[], float] = time.perf_counter) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 step, got {window}")
        self.clock = clock
        self._steps: deque[tuple[float, int, float]] = deque(maxlen=window)
        self._since: float | None = None

    def start(self, device: torch.device) -> None:
        """A step begins; the clock starts here only if no step ended since the last pause."""
        if self._since is None:
            synchronize(device)
            self._since = self.clock()

    def pause(self) -> None:
        """Time from now to the next ``start`` is not training (validation, checkpoint restore)."""
        self._since = None

    def end(self, device: torch.device, tokens: int, flops: float) -> tuple[float, float]:
        """A step of ``tokens`` tokens and ``flops`` FLOPs ended: tokens/s and FLOP/s over the window."""
        if self._since is None:
            raise RuntimeError("end() without start()")
        synchronize(device)
        now = self.clock()
        self._steps.append((now - self._since, tokens, flops))
        self._since = now
        seconds = max(sum(step[0] for step in self._steps), 1e-9)
        return sum(step[1] for step in self._steps) / seconds, sum(step[2] for step in self._steps) / seconds
