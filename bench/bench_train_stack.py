"""Tokens/s and peak RSS of three training stacks on the same tiny LLaMA, batch and data, side by side.

    python bench/bench_train_stack.py            # all stacks, stage 1 and stage 2, ~5 minutes on 2 CPU cores

Stacks (each run in its own subprocess so peak RSS is its own):
  * zhllama  -- CausalLMModule + freeze-policy callback under the Lightning Trainer (chunked linear CE);
                also with ``new_rows_only``.
  * anchor   -- Chinese-LLaMA-Alpaca's: HF ``Trainer``; stage 2 is peft LoRA with
                ``modules_to_save=["embed_tokens", "lm_head"]``.
  * plain    -- a plain PyTorch loop over the HF model (HF loss, peft LoRA with embedding/head marked trainable).

Model: 4-layer, 256-wide LLaMA, vocabulary 49953 (LLaMA's 32000 + the anchor's Chinese pieces), fp32.
Data: Chinese Wikipedia (shared data) encoded with the anchor's 49953-piece tokenizer, batch 4 x 512.
Stage 1 trains the embedding; stage 2 LoRA r 64 / alpha 32 on the seven projections + embedding + head.
Throughput is timed over the steps after the first ``--warmup`` ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZHLLAMA_SHARED_DATA", ROOT.parent / "shared" / "data"))
ORIGINAL_VOCAB, VOCAB = 32000, 49953
MODEL = dict(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=688)
BATCH, SEQ = 4, 512
LORA = dict(r=64, alpha=32, dropout=0.0)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LR, WD = 2e-4, 0.1
RUNS = [  # (label, stack, stage, new_rows_only)
    ("stage1 anchor", "anchor", 1, False),
    ("stage1 plain", "plain", 1, False),
    ("stage1 zhllama", "zhllama", 1, False),
    ("stage1 zhllama new_rows_only", "zhllama", 1, True),
    ("stage2 anchor", "anchor", 2, False),
    ("stage2 plain", "plain", 2, False),
    ("stage2 zhllama", "zhllama", 2, False),
    ("stage2 zhllama new_rows_only", "zhllama", 2, True),
]


def token_batches(steps: int):
    """``steps`` batches of [4, 512] real Chinese Wikipedia tokens (the anchor's tokenizer), fixed order."""
    import sentencepiece as spm
    import torch

    sp = spm.SentencePieceProcessor(model_file=str(SHARED / "tokenizers" / "expected" / "chinese_llama_v1_49953.model"))
    ids: list[int] = []
    with open(SHARED / "zhwiki" / "wiki_zh_sample.jsonl", encoding="utf-8") as f:
        for line in f:
            ids += [1, *sp.encode(json.loads(line)["text"])]
            if len(ids) >= steps * BATCH * SEQ:
                break
    blocks = torch.tensor(ids[: steps * BATCH * SEQ]).view(steps, BATCH, SEQ)
    return [{"input_ids": b, "labels": b.clone()} for b in blocks]


def build_model():
    from lightning_modules.model_loading import build_causal_lm, tiny_llama_config

    return build_causal_lm(model_config=tiny_llama_config(**MODEL), init_seed=0)


class StepTimer:
    """Wall-clock and process-CPU time of the steps after warmup. On a shared machine the CPU time (all threads)
    is the steadier measure of the work a stack does; both are reported."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.count, self.start, self.cpu_start = warmup, 0, 0.0, 0.0

    def step_done(self) -> None:
        self.count += 1
        if self.count == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def result(self) -> dict[str, float]:
        tokens = (self.count - self.warmup) * BATCH * SEQ
        return {
            "tokens_per_s": tokens / (time.perf_counter() - self.start),
            "tokens_per_cpu_s": tokens / (time.process_time() - self.cpu_start),
        }


def run_zhllama(stage: int, new_rows_only: bool, batches, timer: StepTimer) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from callbacks.embedding_only import EmbeddingOnly
    from callbacks.lora_with_embeddings import LoRAWithEmbeddings
    from lightning_modules.causal_lm import CausalLMModule
    from lightning_modules.model_loading import tiny_llama_config

    class Timing(pl.Callback):
        def on_train_batch_end(self, *args) -> None:
            timer.step_done()

    policy = EmbeddingOnly(new_rows_only=new_rows_only) if stage == 1 else LoRAWithEmbeddings(
        **LORA, target_modules=TARGETS, new_rows_only=new_rows_only)
    module = CausalLMModule(model_config=tiny_llama_config(**MODEL), original_vocab_size=ORIGINAL_VOCAB,
                            learning_rate=LR, weight_decay=WD, warmup_steps=0, loss_chunk_size=512)
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision="32-true", max_steps=len(batches), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[policy, Timing()], num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))


def lora_model(model, modules_to_save):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"], target_modules=TARGETS,
                        modules_to_save=modules_to_save, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def run_anchor(stage: int, batches, timer: StepTimer) -> None:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model = build_model()
    if stage == 1:
        model.requires_grad_(False)
        model.get_input_embeddings().weight.requires_grad_(True)
    else:
        model = lora_model(model, ["embed_tokens", "lm_head"])

    class Timing(TrainerCallback):
        def on_step_end(self, *args, **kwargs) -> None:
            timer.step_done()

    class Batches(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(batches) * BATCH

        def __getitem__(self, i: int):
            b = batches[i // BATCH]
            return {"input_ids": b["input_ids"][i % BATCH], "labels": b["labels"][i % BATCH]}

    args = TrainingArguments(output_dir=os.environ.get("TMPDIR", "/tmp") + "/bench_anchor", per_device_train_batch_size=BATCH,
                             max_steps=len(batches), learning_rate=LR, weight_decay=WD, lr_scheduler_type="cosine",
                             warmup_steps=0, save_strategy="no", report_to=[], logging_strategy="no", use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=Batches(), callbacks=[Timing()]).train()


def run_plain(stage: int, batches, timer: StepTimer) -> None:
    import torch

    model = build_model()
    if stage == 1:
        model.requires_grad_(False)
    else:
        model = lora_model(model, None)
    base = model.get_base_model() if stage == 2 else model
    base.get_input_embeddings().weight.requires_grad_(True)
    if stage == 2:
        base.get_output_embeddings().weight.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=WD)
    model.train()
    for batch in batches:
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer.step_done()


def worker(stack: str, stage: int, new_rows_only: bool, steps: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    batches = token_batches(steps)
    timer = StepTimer(warmup)
    if stack == "zhllama":
        run_zhllama(stage, new_rows_only, batches, timer)
    elif stack == "anchor":
        run_anchor(stage, batches, timer)
    else:
        run_plain(stage, batches, timer)
    return {**timer.result(), "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--only", default=None, help="run the labels containing this string")
    parser.add_argument("--worker", nargs=3, metavar=("STACK", "STAGE", "NEW_ROWS_ONLY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        stack, stage, new_rows = args.worker
        print("RESULT " + json.dumps(worker(stack, int(stage), new_rows == "1", args.steps, args.warmup)))
        return
    results: dict[str, dict] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    for label, stack, stage, new_rows in RUNS:
        if args.only and args.only not in label:
            continue
        cmd = [sys.executable, __file__, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--worker", stack, str(stage), "1" if new_rows else "0"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
        if out.returncode or not lines:
            sys.exit(f"{label} failed:\n{out.stderr[-3000:]}")
        results[label] = json.loads(lines[-1][7:])
        r = results[label]
        print(f"{label:<32} {r['tokens_per_s']:>7.0f} tokens/s {r['tokens_per_cpu_s']:>7.0f} tokens/CPU-s  "
              f"peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    print(f"\nratios vs the anchor (4-layer 256-wide LLaMA, vocab {VOCAB}, batch {BATCH}x{SEQ}, fp32):")
    for label, r in results.items():
        anchor = results.get(f"stage{label[5]} anchor")
        if anchor and not label.endswith("anchor"):
            print(f"{label:<32} tokens/s {r['tokens_per_s'] / anchor['tokens_per_s']:.2f}x  "
                  f"tokens/CPU-s {r['tokens_per_cpu_s'] / anchor['tokens_per_cpu_s']:.2f}x  "
                  f"peak RSS {r['peak_rss_gb'] / anchor['peak_rss_gb']:.2f}x")


if __name__ == "__main__":
    main()
