"""``zhllama fit`` on 2 CPU processes as a subprocess: Lightning's launcher re-runs the command line once per
extra rank, so a distributed run cannot start inside pytest's own process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.cli.tiny_fit import CONFIGS, TINY

ZHLLAMA = Path(sys.executable).parent / "zhllama"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CPU_DEEPSPEED = "tests.distributed.cpu_deepspeed.CPUDeepSpeedStrategy"
EMBEDDING_ONLY = "callbacks.embedding_only.EmbeddingOnly"
LORA = "callbacks.lora_with_embeddings.LoRAWithEmbeddings"
ATOL = 1e-7  # all-reduce sums in another order than one process: observed differences are below 1e-9


def sft_args(tokenizer: Path, alpaca: Path) -> list[str]:
    """``--config configs/tiny/sft.yaml`` on the tiny model, cut down to seconds."""
    return [
        "--config", str(CONFIGS / "sft.yaml"),
        "--data.init_args.tokenizer", str(tokenizer),
        "--data.init_args.inputs", str(alpaca),
        "--data.init_args.max_seq_length", "48",
        "--data.init_args.val_examples", "4",
        "--trainer.limit_val_batches", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0",
    ]  # fmt: skip


def fit(
    root: Path, *args: str, strategy: str | None = "ddp", devices: int = 2, batch_size: int = 1, max_steps: int = 1,
    timeout: int = 240, logger: str = "false",
) -> Path:
    """One ``zhllama fit`` into the run directory ``root`` on ``devices`` CPU processes; returns ``root``.
    ``strategy=None`` leaves the strategy to the configs in ``args``; ``logger`` is ``--trainer.logger``.

    The learning rate is its peak at every step (no warmup, no decay), so a run cut short by ``max_steps`` and
    resumed follows the uninterrupted run; Adam's ``eps`` is 1, so a step moves each parameter by about
    ``lr × gradient``: parameters after a step compare gradients, not just their signs."""
    command = [
        str(ZHLLAMA), "fit", *args,
        "--trainer.default_root_dir", str(root),
        "--trainer.devices", str(devices),
        "--trainer.accelerator", "cpu",
        "--trainer.max_steps", str(max_steps),
        "--trainer.logger", logger,
        "--data.init_args.batch_size", str(batch_size),
        "--model.warmup_steps", "0",
        "--model.min_lr_ratio", "1.0",
        "--model.eps", "1.0",
        *(["--trainer.strategy", strategy] if strategy else []),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(command, cwd=root.parent, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return root


def callbacks_config(folder: Path, policy: str, **init_args: object) -> Path:
    """A config fragment whose callbacks are ``policy`` and a checkpoint at every step (``last.ckpt`` too)."""
    arguments = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in init_args.items())
    path = folder / f"{policy.rsplit('.', 1)[-1]}_{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(
        "trainer:\n  callbacks:\n"
        f"    - class_path: {policy}\n      init_args: {{{arguments}}}\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        "      init_args: {save_last: true, every_n_train_steps: 1, save_top_k: -1}\n",
        encoding="utf-8",
    )
    return path


def checkpoint(root: Path, name: str = "last.ckpt") -> dict:
    return torch.load(root / "checkpoints" / name, weights_only=True)


def trained(root: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    """The trained parameters in one of the run's checkpoints."""
    return checkpoint(root, name)["state_dict"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """The same parameter names, each equal up to the order of the ranks' sums."""
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=ATOL, msg=lambda m: f"{name}: {m}")


def start_weights() -> dict[str, torch.Tensor]:
    """The tiny model's embedding and head as stage 1 starts, before the vocabulary grows."""
    from lightning_modules.causal_lm import CausalLMModule

    start = CausalLMModule(model_config=json.loads(TINY), init_seed=0)
    start.configure_model()
    lm = start.causal_lm
    return {"model.model.embed_tokens.weight": lm.get_input_embeddings().weight.detach(),
            "model.lm_head.weight": lm.get_output_embeddings().weight.detach()}


def csv_logger(root: Path) -> str:
    """``--trainer.logger`` writing every step's metrics to ``root/csv/version_N/metrics.csv``, N per invocation."""
    return json.dumps({"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": str(root), "name": "csv"}})


def logged(root: Path, metric: str) -> list[list[float]]:
    """Per invocation of a run logged by ``csv_logger``, the values of ``metric`` in step order."""
    versions = sorted((root / "csv").glob("version_*"), key=lambda v: int(v.name.removeprefix("version_")))
    values = []
    for version in versions:
        with (version / "metrics.csv").open(encoding="utf-8") as file:
            rows = [row for row in csv.DictReader(file) if row.get(metric)]
        values.append([float(row[metric]) for row in sorted(rows, key=lambda row: int(row["step"]))])
    return values


def assert_export_and_init_from_carry(run: Path, trained: dict[str, torch.Tensor], out: Path) -> None:
    """``zhllama export --ckpt`` of the run directory and ``init_from`` its ``last.ckpt`` both hold the ``trained``
    embedding and head (module state-dict names) exactly."""
    from transformers import AutoModelForCausalLM

    from cli.export import main as export_main
    from lightning_modules.causal_lm import CausalLMModule

    assert export_main(["--ckpt", str(run), "--output", str(out), "--dtype", "fp32"]) == 0
    exported = AutoModelForCausalLM.from_pretrained(out)
    following = CausalLMModule(init_from=str(run / "checkpoints" / "last.ckpt"))
    following.configure_model()
    for model in (exported, following.causal_lm):
        assert torch.equal(model.get_input_embeddings().weight, trained["model.model.embed_tokens.weight"])
        assert torch.equal(model.get_output_embeddings().weight, trained["model.lm_head.weight"])
