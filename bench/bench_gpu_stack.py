"""Tokens/s, MFU and peak GPU memory of a LLaMA-7B-shaped model on one GPU: this stack against the anchor's.

    python bench/bench_gpu_stack.py                 # the H200 check (bench/gpu_check.sh runs it), ~5 minutes
    python bench/bench_gpu_stack.py --shape tiny    # a CPU smoke run of every code path, ~1 minute

Runs, each in its own subprocess (so peak memory is its own), on random-init weights and random tokens (throughput
does not depend on either), bf16 autocast, activation checkpointing, batch 8 x 512, no gradient clipping on either
stack (the comparison is of the training step alone):
  * stage2 zhllama        -- CausalLMModule + LoRAWithEmbeddings (r 64, alpha 32) under the Lightning Trainer
  * stage1 zhllama        -- CausalLMModule + EmbeddingOnly
  * stage2 anchor         -- HF Trainer + peft LoRA with modules_to_save=["embed_tokens", "lm_head"] (the anchor's)
  * stage2 zhllama zero2  -- stage 2 under configs/strategies/deepspeed_zero2.yaml (skipped without deepspeed)

MFU divides the FLOPs each step does by 989 TFLOP/s (H100/H200 SXM dense bf16): forward, the recomputed forward of
the checkpointed layers, the input gradients, and the weight gradients of trained matmuls only (frozen weights get
none); attention as in PaLM's appendix B. ``mfu_6n`` is the usual 6 x parameters convention (``train/mfu``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEAK_FLOPS = 989e12
ORIGINAL_VOCAB, VOCAB = 32000, 49953
SHAPES = {
    "7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, intermediate_size=11008),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=344),
}
LORA = dict(r=64, alpha=32, dropout=0.0)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RUNS = ["stage2 zhllama", "stage1 zhllama", "stage2 anchor", "stage2 zhllama zero2"]


def model_config(shape: str) -> dict[str, Any]:
    return dict(vocab_size=ORIGINAL_VOCAB, max_position_embeddings=2048, rms_norm_eps=1e-6, bos_token_id=1,
                eos_token_id=2, tie_word_embeddings=False, **SHAPES[shape])


def done_flops_per_token(shape: str, stage: int, seq: int) -> float:
    """FLOPs a training step does per token (see the module docstring), with the vocabulary grown to ``VOCAB``."""
    c = SHAPES[shape]
    d, layers, ffn = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
    layer_weights = layers * (4 * d * d + 3 * d * ffn)
    head = VOCAB * d
    attention = 4.0 * layers * d * seq  # QK^T and AV, forward, per token
    forward = 2.0 * (layer_weights + head) + attention
    recompute = 2.0 * layer_weights + attention
    input_grads = 2.0 * (layer_weights + head) + 2 * attention
    weight_grads = 0.0
    if stage == 2:
        lora_in_out = layers * (4 * 2 * d + 3 * (d + ffn))  # (in + out) of the seven projections
        weight_grads = 2.0 * head + 8.0 * LORA["r"] * lora_in_out  # LoRA: forward, recompute, 2 backward matmuls
    return forward + recompute + input_grads + weight_grads


def six_n_flops_per_token(shape: str, seq: int) -> float:
    c = SHAPES[shape]
    d, layers = c["hidden_size"], c["num_hidden_layers"]
    return 6.0 * (layers * (4 * d * d + 3 * d * c["intermediate_size"]) + VOCAB * d) + 12.0 * layers * d * seq


class StepClock:
    """Wall time of the steps after ``warmup``, the device synchronised at each step's end."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.count, self.start = warmup, device, 0, 0.0

    def step_done(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        self.count += 1
        if self.count == self.warmup:
            self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def token_batches(steps: int, batch: int, seq: int) -> list[dict[str, Any]]:
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (steps, batch, seq), generator=generator)
    return [{"input_ids": b, "labels": b.clone()} for b in ids]


def run_zhllama(args: argparse.Namespace, stage: int, zero2: bool, batches: list, clock: StepClock) -> None:
    import lightning.pytorch as pl
    import yaml
    from torch.utils.data import DataLoader

    from callbacks.embedding_only import EmbeddingOnly
    from callbacks.lora_with_embeddings import LoRAWithEmbeddings
    from lightning_modules.causal_lm import CausalLMModule

    class Timing(pl.Callback):
        def on_train_batch_end(self, *unused: Any) -> None:
            clock.step_done()

    policy = EmbeddingOnly() if stage == 1 else LoRAWithEmbeddings(**LORA, target_modules=TARGETS)
    module = CausalLMModule(model_config={**model_config(args.shape), "vocab_size": VOCAB},
                            original_vocab_size=ORIGINAL_VOCAB, learning_rate=2e-4, warmup_steps=0,
                            activation_checkpointing=True)
    strategy: Any = "auto"
    if zero2:
        from lightning.pytorch.strategies import DeepSpeedStrategy

        fragment = yaml.safe_load((ROOT / "configs" / "strategies" / "deepspeed_zero2.yaml").read_text())
        strategy = DeepSpeedStrategy(**fragment["trainer"]["strategy"]["init_args"])
    trainer = pl.Trainer(accelerator=args.device, devices=1, strategy=strategy, precision="bf16-mixed",
                         max_steps=len(batches), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[policy, Timing()],
                         num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))


def run_anchor(args: argparse.Namespace, batches: list, clock: StepClock) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

    with torch.device(args.device):
        model = LlamaForCausalLM(LlamaConfig(**{**model_config(args.shape), "vocab_size": VOCAB}))
    model.config.use_cache = False
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                             target_modules=TARGETS, modules_to_save=["embed_tokens", "lm_head"],
                                             task_type="CAUSAL_LM"))

    class Timing(TrainerCallback):
        def on_step_end(self, *unused: Any, **kwargs: Any) -> None:
            clock.step_done()

    batch = batches[0]["input_ids"].shape[0]

    class Blocks(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(batches) * batch

        def __getitem__(self, i: int) -> dict[str, Any]:
            b = batches[i // batch]
            return {"input_ids": b["input_ids"][i % batch], "labels": b["labels"][i % batch]}

    training = TrainingArguments(output_dir=str(Path(args.scratch) / "anchor"), per_device_train_batch_size=batch,
                                 max_steps=len(batches), learning_rate=2e-4, weight_decay=0.1, warmup_steps=0,
                                 lr_scheduler_type="cosine", bf16=True, max_grad_norm=0.0, save_strategy="no",
                                 report_to=[], logging_strategy="no", dataloader_num_workers=0, disable_tqdm=True,
                                 use_cpu=args.device == "cpu")
    Trainer(model=model, args=training, train_dataset=Blocks(), callbacks=[Timing()]).train()


def worker(args: argparse.Namespace, label: str) -> dict[str, float]:
    import torch

    batches = token_batches(args.warmup + args.steps, args.batch, args.seq)
    clock = StepClock(args.warmup, args.device)
    stage = int(label[5])
    if "anchor" in label:
        run_anchor(args, batches, clock)
    else:
        run_zhllama(args, stage, label.endswith("zero2"), batches, clock)
    tokens_per_s = args.steps * args.batch * args.seq / clock.seconds()
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else float("nan")
    return {
        "tokens_per_s": tokens_per_s,
        "mfu": tokens_per_s * done_flops_per_token(args.shape, stage, args.seq) / PEAK_FLOPS,
        "mfu_6n": tokens_per_s * six_n_flops_per_token(args.shape, args.seq) / PEAK_FLOPS,
        "peak_memory_gib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda for 7b, cpu for tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--timeout", type=int, default=150, help="seconds per run")
    parser.add_argument("--scratch", default=os.environ.get("TMPDIR", "/tmp"))
    parser.add_argument("--only", default=None, help="run the labels containing this string")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.device = args.device or ("cuda" if args.shape == "7b" else "cpu")
    if args.device == "cpu" and not args.worker:
        RUNS.remove("stage2 zhllama zero2")  # Lightning's DeepSpeed strategy runs on CUDA only
    if args.worker:
        print("RESULT " + json.dumps(worker(args, args.worker)), flush=True)
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    results: dict[str, dict[str, float]] = {}
    for label in RUNS:
        if args.only and args.only not in label:
            continue
        if label.endswith("zero2") and subprocess.run([sys.executable, "-c", "import deepspeed"],
                                                      capture_output=True).returncode:
            print(f"{label:<22} skipped: deepspeed is not installed (pip install -e '.[deepspeed]')", flush=True)
            continue
        command = [sys.executable, __file__, "--shape", args.shape, "--device", args.device, "--batch",
                   str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--scratch", args.scratch, "--worker", label]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{label:<22} did not finish in {args.timeout} s", flush=True)
            continue
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            print(f"{label:<22} failed (exit {done.returncode}):\n{done.stderr[-3000:]}", flush=True)
            continue
        r = results[label] = json.loads(lines[-1][len("RESULT "):])
        print(f"{label:<22} {r['tokens_per_s']:>9.0f} tokens/s  MFU {r['mfu']:6.1%}  (6N: {r['mfu_6n']:6.1%})  "
              f"peak {r['peak_memory_gib']:6.1f} GiB", flush=True)
    if "stage2 zhllama" in results and "stage2 anchor" in results:
        ratio = results["stage2 zhllama"]["tokens_per_s"] / results["stage2 anchor"]["tokens_per_s"]
        print(f"stage 2 tokens/s, this stack / the anchor's: {ratio:.2f}x (target >= 1.5x; MFU target >= 50%)")


if __name__ == "__main__":
    main()
