"""``zhllama fit`` on 2 CPU processes as a subprocess, started by ``torchrun`` or by Lightning's launcher (which
re-runs the command line once per extra rank, so a distributed run cannot start inside pytest's own process)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from tests.cli.tiny_fit import CONFIGS, TINY

ZHLLAMA = Path(sys.executable).parent / "zhllama"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CPU_DEEPSPEED = "tests.distributed.cpu_deepspeed.CPUDeepSpeedStrategy"
EMBEDDING_ONLY = "callbacks.embedding_only.EmbeddingOnly"
LORA = "callbacks.lora_with_embeddings.LoRAWithEmbeddings"
OUTPUT = "output.txt"  # a run's console output, every invocation's
ATOL = 1e-7  # all-reduce sums in another order than one process: observed differences are below 1e-9
#: Callbacks ``callbacks_config`` adds by name: the parameter table, and greedy samples written to TensorBoard.
EXTRA_CALLBACKS = {
    "budget": {"class_path": "callbacks.parameter_budget.ParameterBudget"},
    "samples": {"class_path": "callbacks.generation_samples.GenerationSamples",
                "init_args": {"prompts": ["中国的首都是", "请介绍一下长城。"], "max_new_tokens": 4, "template": "alpaca_v1"}},
}
SAMPLES_TAG = "samples/generations/text_summary"


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


def sft_fit(root: Path, inputs: dict[str, Path], alpaca: Path, init_from: Path, *args: str,
            strategy: str | None = "ddp") -> Path:
    """One step of SFT (LoRA r 4 with the embedding and head) from ``init_from`` into ``root``, then a validation:
    ``ParameterBudget`` prints its table, ``GenerationSamples`` writes to TensorBoard (``root/tb``)."""
    policy = callbacks_config(inputs["folder"], LORA, "budget", "samples", r=4, alpha=8, dropout=0.0)
    logger = json.dumps({"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                         "init_args": {"save_dir": str(root), "name": "tb"}})
    return fit(root, *sft_args(inputs["tokenizer"], alpaca), "--model.init_from", str(init_from), "--config",
               str(policy), "--trainer.val_check_interval", "1", *args, strategy=strategy, logger=logger)


def fit(
    root: Path, *args: str, strategy: str | None = "ddp", devices: int = 2, batch_size: int = 1, max_steps: int = 1,
    timeout: int = 240, logger: str = "false", torchrun: bool = True,
) -> Path:
    """One ``zhllama fit`` into the run directory ``root`` on ``devices`` CPU processes; returns ``root``, its
    console output appended to ``root/output.txt``. ``strategy=None`` leaves the strategy to the configs in
    ``args``; ``logger`` is ``--trainer.logger``. The processes start together under ``torchrun`` (as
    docs/scaling.md runs each node), or with ``torchrun=False`` one by one: Lightning re-runs the command line
    for each further rank once the first has parsed it (one machine's ``zhllama fit --trainer.devices N``).

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
    if torchrun and devices > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(devices),
                   *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(command, cwd=root.parent, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-12000:]
    with (root / OUTPUT).open("a", encoding="utf-8") as output:
        output.write(done.stdout + done.stderr)
    return root


def fit_and_resume(root: Path, *args: str, **options: object) -> Path:
    """``fit`` for one step, then again with ``--ckpt_path last`` for the second: a run stopped and resumed."""
    fit(root, *args, max_steps=1, **options)
    return fit(root, *args, "--ckpt_path", "last", max_steps=2, **options)


def callbacks_config(folder: Path, policy: str, *extra: str, **init_args: object) -> Path:
    """A config fragment whose callbacks are ``policy`` (with ``init_args``), the ``extra`` ones (names in
    ``EXTRA_CALLBACKS``) and a checkpoint at every step (``last.ckpt`` too)."""
    callbacks = [{"class_path": policy, "init_args": init_args}, *(EXTRA_CALLBACKS[name] for name in extra),
                 {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                  "init_args": {"save_last": True, "every_n_train_steps": 1, "save_top_k": -1}}]
    path = folder / f"{policy.rsplit('.', 1)[-1]}_{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}), encoding="utf-8")
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


def assert_sft_trained_with_samples_and_budget(run: Path, state: dict[str, torch.Tensor], record: dict) -> None:
    """An ``sft_fit`` run saved its trained parameters only, LoRA's B moved off zero, rank 0 wrote its samples to
    TensorBoard once, and the parameter table counted every parameter whole (sharded or not)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert sorted(state) == sorted(record["trainable"])
    lora = {name: weight for name, weight in state.items() if "lora_" in name}
    assert max(w.abs().max() for name, w in lora.items() if "lora_B" in name) > 100 * ATOL
    events = EventAccumulator(str(run / "tb" / "version_0"))
    events.Reload()
    samples = events.Tensors(SAMPLES_TAG)
    assert [event.step for event in samples] == [1]
    assert all(prompt in samples[0].tensor_proto.string_val[0].decode()
               for prompt in EXTRA_CALLBACKS["samples"]["init_args"]["prompts"])
    table = {line.split()[0]: [int(n.replace(",", "")) for n in line.split()[1:3]]
             for line in (run / OUTPUT).read_text(encoding="utf-8").splitlines()
             if line.split()[:1] in (["embed_tokens"], ["lm_head"], ["lora"], ["all"])}
    hidden = json.loads(TINY)["hidden_size"]
    assert table["embed_tokens"] == table["lm_head"] == [record["vocab_size"] * hidden] * 2
    assert table["lora"][0] == table["lora"][1] == sum(w.numel() for w in lora.values())
