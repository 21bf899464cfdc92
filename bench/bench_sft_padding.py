"""Effective (non-pad) SFT training tokens/s: length-grouped dynamic padding vs the anchor's collator.

The anchor (Chinese-LLaMA-Alpaca ``run_clm_sft_with_peft.py``) shuffles examples and its
``DataCollatorForSupervisedDataset`` pads each batch to its longest member. ``AlpacaSFTDataModule`` batches
examples of similar length (:func:`datamodules.sft_batching.length_grouped_batches`), and its loss skips the
positions labelled -100 (prompt and padding) before the output head, where the anchor's Hugging Face loss computes
logits for every position. Three arms train the same tiny LLaMA (same LoRA + embedding policy) on ``--steps``
batches of one epoch's plan, steps alternating so that load from other processes hits all alike: the anchor
(its batching, HF's loss), the anchor's batching with the project's loss, and the project (both). A step's work
grows with padded tokens, its use with real ones, so non-pad tokens/s is the measure. Whole-epoch padding shares
are printed too.

    python bench/bench_sft_padding.py [--steps 12] [--batch_size 16] [--max_seq_length 512]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from callbacks.lora_with_embeddings import LoRAWithEmbeddings  # noqa: E402
from datamodules.alpaca_records import iter_alpaca_records, new_skip_report  # noqa: E402
from datamodules.prompt_templates import get_template  # noqa: E402
from datamodules.sft_batching import SFTCollator, length_grouped_batches, pad_token_id  # noqa: E402
from datamodules.sft_examples import SFTExample, encode_records  # noqa: E402
from lightning_modules.causal_lm import CausalLMModule  # noqa: E402
from lightning_modules.model_loading import tiny_llama_config  # noqa: E402

SHARED = PROJECT_ROOT.parent / "shared" / "data"


def default_data() -> Path:
    local = SHARED / "alpaca_zh" / "alpaca_zh_demo.json"
    if local.is_file():
        return local
    from datamodules.demo_assets import asset_path

    return asset_path("alpaca_zh_demo")


def anchor_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """The anchor's order: a seeded shuffle cut into batches (its collator then pads to each batch's longest)."""
    order = np.random.default_rng([seed, 0]).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def padding_share(plan: list[list[int]], lengths: list[int]) -> float:
    real = sum(lengths[i] for batch in plan for i in batch)
    return 1 - real / sum(len(batch) * max(lengths[i] for i in batch) for batch in plan)


class Arm:
    """One side of the comparison: its own model copy, optimizer, batches and stopwatch."""

    def __init__(
        self, name: str, module: CausalLMModule, batches: list[dict[str, torch.Tensor]], hf_loss: bool
    ) -> None:
        self.name, self.module, self.batches, self.hf_loss = name, module, batches, hf_loss
        self.optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
        self.seconds = 0.0

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        start = time.perf_counter()
        if self.hf_loss:  # the anchor's path: full logits for every position, then cross-entropy
            loss = self.module.model(**batch).loss
        else:
            loss, _ = self.module.loss(batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    @property
    def real_tokens(self) -> int:
        return sum(int(b["attention_mask"].sum()) for b in self.batches)

    @property
    def padded_tokens(self) -> int:
        return sum(b["input_ids"].numel() for b in self.batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="Alpaca JSON (default: alpaca_zh_demo.json)")
    parser.add_argument("--tokenizer", type=Path, default=SHARED / "tokenizers" / "chinese_llama2")
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps per arm")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--group_batches", type=int, default=64)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads; 1 by default: on a shared machine, multi-threaded ops wait on descheduled threads "
        "(measured: a 2-thread backward of 640 tokens took 2.3 s, 1-thread 0.04 s), a per-step cost that hides padding",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoTokenizer

    data = args.data or default_data()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    report = new_skip_report()
    examples: list[SFTExample] = encode_records(
        iter_alpaca_records(data, report=report), tokenizer, get_template("alpaca_v1"), args.max_seq_length, report
    )
    lengths = [len(e) for e in examples]
    collate = SFTCollator(pad_token_id(tokenizer))
    shuffled = anchor_batches(len(examples), args.batch_size, args.seed)
    grouped = length_grouped_batches(lengths, args.batch_size, args.seed, 0, args.group_batches)
    arm_specs = {  # name -> (batch plan, the anchor's HF loss?)
        "anchor (shuffle+pad, HF loss)": (shuffled, True),
        "anchor batching, zhllama loss": (shuffled, False),
        "zhllama (length-grouped)": (grouped, False),
    }
    print(
        f"data {data.name}: {len(examples)} examples ({report.total} skipped), tokens/example mean "
        f"{np.mean(lengths):.0f}, max {max(lengths)}; batch {args.batch_size}, max_seq_length {args.max_seq_length}; "
        f"model {args.layers}x{args.hidden_size}, vocab {len(tokenizer)}, LoRA+embeddings; {args.threads} threads"
    )
    for name, plan in (("anchor (shuffle, pad to batch max)", shuffled), ("zhllama (length-grouped)", grouped)):
        print(f"  whole epoch, {name:36s}: padding {padding_share(plan, lengths):6.1%} of batch tokens")
    arms = []
    for name, (plan, hf_loss) in arm_specs.items():
        module = CausalLMModule(
            model_config=tiny_llama_config(vocab_size=len(tokenizer), hidden_size=args.hidden_size,
                                           num_hidden_layers=args.layers, max_position_embeddings=args.max_seq_length),
            init_seed=args.seed, loss_chunk_size=1024,
        )
        module.configure_model()
        module.apply_freeze_policy(LoRAWithEmbeddings())
        timed = plan[2 : 2 + args.steps]  # plan[0] is ours' deliberately longest batch: warm-up, like plan[1]
        arm = Arm(name, module.train(), [collate([examples[i] for i in batch]) for batch in timed], hf_loss)
        for batch in plan[:2]:
            arm.step(collate([examples[i] for i in batch]))
        arms.append(arm)
    # Steps alternate between the arms so that load from other processes hits both alike.
    for index in range(max(len(arm.batches) for arm in arms)):
        for arm in arms:
            if index < len(arm.batches):
                arm.seconds += arm.step(arm.batches[index])
    results = {}
    for arm in arms:
        results[arm.name] = arm.real_tokens / arm.seconds
        print(
            f"{arm.name:36s} {len(arm.batches):3d} steps {arm.seconds:7.2f} s  padding "
            f"{1 - arm.real_tokens / arm.padded_tokens:6.1%}  non-pad tokens/s {results[arm.name]:9.0f}"
        )
    anchor, anchor_batching, ours = results.values()
    print(f"ratio (zhllama / anchor) non-pad tokens/s: {ours / anchor:.2f}x (target >= 1.5x)")
    print(f"  of which the loss: {anchor_batching / anchor:.2f}x, length grouping: {ours / anchor_batching:.2f}x")


if __name__ == "__main__":
    main()
