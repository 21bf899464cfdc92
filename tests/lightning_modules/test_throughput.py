"""``train/tokens_per_s`` and ``train/mfu``: non-padding tokens, device synchronised before the clock is read,
rates over a rolling window of steps, validation time left out."""

import itertools

import pytest
import torch

from lightning_modules.flops import training_flops
from lightning_modules.throughput import RollingThroughput
from tests.lightning_modules.tiny_training import VOCAB, tiny_module, tiny_trainer
from tokenization.constants import IGNORE_INDEX

CPU = torch.device("cpu")


class FakeClock:
    def __init__(self, *times: float) -> None:
        self.times = iter(times)

    def __call__(self) -> float:
        return next(self.times)


def test_rates_are_window_totals_over_window_time() -> None:
    throughput = RollingThroughput(window=2, clock=FakeClock(0.0, 1.0, 4.0, 5.0))
    throughput.start(CPU)
    assert throughput.end(CPU, tokens=10, flops=100.0) == (10.0, 100.0)  # 1 s
    throughput.start(CPU)  # timed from the previous end: no clock read
    assert throughput.end(CPU, tokens=20, flops=200.0) == (30 / 4, 300 / 4)  # 3 s
    throughput.start(CPU)
    assert throughput.end(CPU, tokens=40, flops=400.0) == (60 / 4, 600 / 4)  # 1 s; the first step left the window


def test_a_pause_leaves_the_time_until_the_next_start_out() -> None:
    throughput = RollingThroughput(clock=FakeClock(0.0, 1.0, 100.0, 101.0))
    throughput.start(CPU)
    throughput.end(CPU, tokens=10, flops=0.0)
    throughput.pause()  # validation runs from 1.0 to 100.0
    throughput.start(CPU)
    assert throughput.end(CPU, tokens=10, flops=0.0) == (10.0, 0.0)


def test_the_device_is_synchronised_before_each_clock_read(monkeypatch) -> None:
    events = []
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda device: events.append(("sync", str(device))))
    ticks = itertools.count()
    throughput = RollingThroughput(clock=lambda: events.append(("clock",)) or float(next(ticks)))
    cuda = torch.device("cuda", 0)
    throughput.start(cuda)
    throughput.end(cuda, tokens=1, flops=0.0)
    assert events == [("sync", "cuda:0"), ("clock",), ("sync", "cuda:0"), ("clock",)]


def padded_loader(lengths: list[int], width: int = 32, batch_size: int = 2) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(0)
    samples = []
    for n in lengths:
        ids = torch.randint(3, VOCAB, (width,), generator=generator)
        mask = (torch.arange(width) < n).long()
        ids = ids * mask
        samples.append({"input_ids": ids, "labels": ids.masked_fill(mask == 0, IGNORE_INDEX), "attention_mask": mask})
    return torch.utils.data.DataLoader(samples, batch_size=batch_size)


def test_module_logs_non_padding_tokens_and_their_flops(tmp_path) -> None:
    lengths = [20, 32, 7, 11]
    module = tiny_module(peak_flops_per_device=1e9)
    module.throughput = RollingThroughput(clock=FakeClock(0.0, 0.5, 1.0))  # two steps of 0.5 s
    trainer = tiny_trainer(tmp_path, max_steps=2, log_every_n_steps=1)
    trainer.fit(module, train_dataloaders=padded_loader(lengths))
    metrics = trainer.callback_metrics
    assert metrics["train/tokens_per_s"].item() == pytest.approx(sum(lengths) / 1.0)
    flops = training_flops(module.causal_lm.config, lengths)
    assert metrics["train/mfu"].item() == pytest.approx(flops / 1.0 / 1e9)
