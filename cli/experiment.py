"""``zhllama experiment``: teach SmolLM2-135M Chinese with the whole recipe, measured at every stage.

    zhllama experiment --profile cpu      # make experiment: at most 90 minutes on 2 CPU cores
    zhllama experiment --profile gpu      # bench/gpu_experiment.sh: minutes on one H200

Baseline evaluation -> Chinese BPE extension of SmolLM2's tokenizer -> the extended model before training under
both new-row inits -> stage 1 under both -> stage 2 (from the better stage 1) -> SFT, each evaluated by
``zhllama eval`` on held-out Chinese Wikipedia and English prose; the same 5 Chinese prompts answered before and
after. Two arms answer the recipe's open questions: stage 2 without stage 1 on the same token budget, and no
vocabulary extension (stage 2 on SmolLM2's own tokenizer) for the recipe's pretraining wall-clock time. Every
step runs the ``zhllama`` command a user would type, is recorded in ``WORKDIR/results.json`` as it ends (a rerun
skips what is recorded) and ends up in the report (``docs/experiments/smollm2.md`` and its plot).
"""

from __future__ import annotations

import json
import shlex
import time
from functools import partial
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cli.experiment_data import characters, split_wikipedia
from cli.experiment_report import write_report
from cli.demo import run
from cli.parsers import command_parser
from datamodules.demo_assets import asset_path, sanguo_chapters_jsonl
from tokenization.atomic_write import atomic_file

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = PROJECT_ROOT / "configs" / "smollm2"
SHARED = PROJECT_ROOT.parent / "shared" / "data"
#: The Chinese instructions answered before and after (simple, answerable by a small model).
PROMPTS = ("请介绍一下北京。", "用三句话描述春天。", "如何保持身体健康？", "什么是人工智能？", "请写一首关于月亮的短诗。")
#: SmolLM2-Instruct's own chat format, for its answers before the recipe.
CHATML = "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"
NEW_ROW_INITS = ("mean", "subtoken_mean")
NO_LIMIT = "99:00:00:00"  # trainer.max_time of runs that stop at max_steps (Lightning then reports their time)


@dataclass(frozen=True)
class Profile:
    """Steps of each stage, in batches of ``batch_size`` blocks of 512 tokens (SFT: examples)."""

    stage1_steps: int
    stage2_steps: int
    sft_steps: int
    batch_size: int
    new_tokens: int = 16000
    heldout_articles: int = 10
    heldout_chars: int = 1000
    english_paragraphs: int = 40
    generate_tokens: int = 64


PROFILES = {
    "cpu": Profile(stage1_steps=120, stage2_steps=150, sft_steps=80, batch_size=4, new_tokens=4000),
    "gpu": Profile(stage1_steps=300, stage2_steps=1000, sft_steps=300, batch_size=16, heldout_articles=20,
                   heldout_chars=3000),
}


class Results:
    """``results.json``: every finished step's figures, rewritten atomically after each step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __getitem__(self, key: str):
        return self.data[key]

    def record(self, key: str, value: object) -> None:
        self.data[key] = value
        with atomic_file(self.path) as partial:
            partial.write_text(json.dumps(self.data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n== {text}\n{'=' * 100}", flush=True)


class Experiment:
    def __init__(self, args, profile: Profile) -> None:
        self.args, self.profile = args, profile
        self.work: Path = args.workdir.resolve()
        self.results = Results(self.work / "results.json")
        self.commands: list[str] = list(self.results.data.get("commands", []))

    # ----- running commands -----------------------------------------------------------------------------------
    def record(self, argv: list[str]) -> None:
        self.commands.append("zhllama " + shlex.join(argv))
        self.results.record("commands", self.commands)

    def zhllama(self, argv: list[str], capture: bool = False) -> str:
        self.record(argv)
        return run(argv, capture)

    def evaluate(self, model: Path, extra: Sequence[str] = ()) -> dict:
        """``zhllama eval`` of ``model`` on the held-out Chinese and the English prose: their total rows."""
        out = self.zhllama(["eval", "--model", str(model), *extra, "--input", str(self.text.heldout_zh),
                            str(self.text.english), "--json"], capture=True)
        rows = {row["input"]: row for row in map(json.loads, out.splitlines()) if row["input"] != "total"}
        return {"zh": rows[str(self.text.heldout_zh)], "en": rows[str(self.text.english)]}

    def fit(self, config: str, run: str, tokenizer: Path, inputs: list[str], overrides: list[str],
            max_time: str = NO_LIMIT) -> dict:
        """One ``zhllama fit``; returns its steps, tokens (or examples), training-loop seconds and evaluation."""
        from lightning.pytorch.callbacks import Timer

        from cli.lightning import run as lightning_cli

        argv = ["fit", "--config", str(CONFIGS / config), f"--trainer.default_root_dir={self.work / 'runs' / run}",
                f"--data.init_args.tokenizer={tokenizer}", f"--data.init_args.inputs=[{','.join(inputs)}]",
                f"--data.init_args.batch_size={self.profile.batch_size}", *overrides, f"--trainer.max_time={max_time}",
                f"--trainer.val_check_interval={overrides_steps(overrides)}", "--trainer.limit_val_batches=4"]
        self.record(argv)
        print("$ " + self.commands[-1], flush=True)
        cli = lightning_cli(argv)
        (timer,) = [c for c in cli.trainer.callbacks if isinstance(c, Timer)]
        data = cli.datamodule
        examples = cli.trainer.global_step * data.batch_size
        block_size = getattr(data, "block_size", None)  # packed blocks: every position is a token
        run_dir = self.work / "runs" / run
        return {"run": str(run_dir), "steps": cli.trainer.global_step, "examples": examples,
                "tokens": examples * block_size if block_size else None, "seconds": timer.time_elapsed("train"),
                "eval": self.evaluate(run_dir)}

    def step(self, key: str, title: str, action) -> dict:
        """Runs ``action`` unless ``key`` is recorded; records what it returns."""
        if key not in self.results:
            banner(title)
            started = time.perf_counter()
            value = action()
            self.results.record(key, {**value, "wall_seconds": round(time.perf_counter() - started, 1)})
        return self.results[key]

    # ----- the experiment -----------------------------------------------------------------------------------
    def run(self) -> Path:
        args, profile, work = self.args, self.profile, self.work
        base = Path(args.base).resolve() if args.base else asset_path("smollm2_gguf")
        banner("text: held-out Chinese Wikipedia, English prose, Chinese training text")
        self.text = split_wikipedia(Path(args.wiki), work / "data", profile.heldout_articles, profile.heldout_chars,
                                    profile.english_paragraphs)
        sanguo, _ = sanguo_chapters_jsonl(work / "data")
        train = [str(self.text.wiki_train), str(sanguo), *map(str, args.extra_text)]
        alpaca = [str(asset_path("alpaca_zh_demo")), *map(str, args.extra_sft)]
        self.results.record("setup", {
            "profile": args.profile, **asdict(profile), "base": str(base), "training_text": train,
            "training_chars": sum(characters(Path(p)) for p in train), "sft_data": alpaca,
            "heldout_titles": self.text.heldout_titles, "heldout_chars_total": characters(self.text.heldout_zh),
            "english_chars_total": characters(self.text.english)})
        tokenizer = work / "tokenizer" / "smollm2_zh"

        self.step("base", "SmolLM2 as it is", lambda: {"eval": self.evaluate(base)})

        def extend() -> dict:
            started = time.perf_counter()
            self.zhllama(["tokenizer", "train", "--kind", "bpe", "--base", str(base), "--input", *train,
                          "--output", str(work / "tokenizer" / "zh_merges.json"),
                          "--vocab_size", str(profile.new_tokens)])
            self.zhllama(["tokenizer", "merge", "--base", str(base), "--add", str(work / "tokenizer" / "zh_merges.json"),
                          "--output", str(tokenizer)])
            seconds = time.perf_counter() - started
            stats = json.loads(self.zhllama(["tokenizer", "stats", "--tokenizer", str(tokenizer), "--base", str(base),
                                             "--input", str(self.text.heldout_zh)], capture=True))
            return {"seconds": seconds, "vocab_size": stats["vocab_size"], "tokens_per_char": stats["tokens_per_char"],
                    "base_tokens_per_char": stats["base"]["tokens_per_char"]}

        extension = self.step("extension", "tokenizer: Chinese BPE merges continuing SmolLM2's", extend)
        for init in NEW_ROW_INITS:
            self.step(f"extended_{init}", f"the extended model before training, new rows at {init}", lambda: {
                "eval": self.evaluate(base, ["--tokenizer", str(tokenizer), "--new_token_init", init])})

        stage1 = {}
        for init in NEW_ROW_INITS:
            stage1[init] = self.step(f"stage1_{init}", f"stage 1 (embedding-only), new rows at {init}", partial(
                self.fit, "pt_embed.yaml", f"pt_embed_{init}", tokenizer, train, [
                    f"--model.pretrained={base}", f"--model.new_token_init={init}",
                    f"--trainer.max_steps={profile.stage1_steps}"]))
        best = min(NEW_ROW_INITS, key=lambda init: stage1[init]["eval"]["zh"]["bits_per_char"])

        stage2 = self.step("stage2", f"stage 2 (LoRA + embedding), after stage 1 with {best}", partial(
            self.fit, "pt_lora.yaml", "pt_lora", tokenizer, train, [
                f"--model.init_from={stage1[best]['run']}", f"--trainer.max_steps={profile.stage2_steps}"]))
        self.step("sft", "SFT: Chinese Alpaca, prompt masked", partial(
            self.fit, "sft.yaml", "sft", tokenizer, alpaca, [
                f"--model.init_from={stage2['run']}", f"--trainer.max_steps={profile.sft_steps}",
                "--trainer.max_epochs=null"]))
        self.step("generations", "the same 5 Chinese prompts, before and after", lambda: self.generations(base))

        both = profile.stage1_steps + profile.stage2_steps
        self.step("stage2_without_stage1", "arm: stage 2 without stage 1, same token budget", partial(
            self.fit, "pt_lora.yaml", "pt_lora_without_stage1", tokenizer, train, [
                "--model.init_from=null", f"--model.pretrained={base}", f"--model.new_token_init={best}",
                f"--trainer.max_steps={both}"]))
        # the recipe's pretraining time; planned 5% beyond it at stage 2's pace, so that the clock ends the arm
        budget = extension["seconds"] + stage1[best]["seconds"] + stage2["seconds"]
        planned = round(1.05 * budget / (stage2["seconds"] / stage2["steps"]))
        self.step("no_extension", "arm: no vocabulary extension, the recipe's wall-clock time", lambda: {
            **self.fit("pt_lora.yaml", "pt_lora_no_extension", base, train, [
                "--model.init_from=null", f"--model.pretrained={base}", f"--trainer.max_steps={planned}"],
                max_time=clock(budget)), "budget_seconds": budget, "planned_steps": planned})
        banner("report")
        return write_report(self.results.data, Path(args.report).resolve(), best, PROJECT_ROOT)

    def generations(self, base: Path) -> dict:
        prompts = self.work / "data" / "prompts.jsonl"
        with atomic_file(prompts) as partial:
            partial.write_text("".join(json.dumps({"instruction": p}, ensure_ascii=False) + "\n" for p in PROMPTS),
                               encoding="utf-8")
        export = self.work / "export" / "sft"
        self.zhllama(["export", "--ckpt", self.results["sft"]["run"], "--output", str(export), "--dtype", "fp32",
                      "--overwrite"])
        answers: dict[str, list[str]] = {"prompts": list(PROMPTS)}
        for name, model, template in (("before", base, CHATML), ("after", export, "alpaca_v1")):
            out = self.work / "generations" / f"{name}.jsonl"
            self.zhllama(["generate", "--model", str(model), "--prompts", str(prompts), "--output", str(out),
                          "--template", template, "--greedy", "--max_new_tokens", str(self.profile.generate_tokens)])
            answers[name] = [json.loads(line)["output"] for line in out.read_text(encoding="utf-8").splitlines()]
        return answers


def overrides_steps(overrides: list[str]) -> int:
    """The run's ``trainer.max_steps``: its one validation comes at the end (the figures that count are
    ``zhllama eval``'s)."""
    (steps,) = [int(o.split("=", 1)[1]) for o in overrides if o.startswith("--trainer.max_steps=")]
    return steps


def clock(seconds: float) -> str:
    """``trainer.max_time``'s DD:HH:MM:SS."""
    s = int(seconds)
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def build_parser():
    parser = command_parser("zhllama experiment", __doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=tuple(PROFILES), default="cpu",
                        help="cpu: at most 90 minutes on 2 cores; gpu: minutes on one H200")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".experiment",
                        help="data, tokenizer, runs, exports and results.json (a rerun skips finished steps)")
    parser.add_argument("--report", type=Path, default=PROJECT_ROOT / "docs" / "experiments" / "smollm2.md",
                        help="the Markdown report to write (its plot goes beside it)")
    parser.add_argument("--base", default=None, help="the model to teach (default: SmolLM2-135M-Instruct's .gguf, "
                        "a demo asset)")
    parser.add_argument("--wiki", type=Path, default=SHARED / "zhwiki" / "wiki_zh_sample.jsonl",
                        help="Chinese Wikipedia JSON lines: the held-out articles come from it, the rest trains")
    parser.add_argument("--extra_text", type=Path, nargs="*",
                        default=[SHARED / "news" / "peoples_daily_199801_part00.txt"],
                        help="more Chinese training text (besides the Wikipedia training split and 三国演义)")
    parser.add_argument("--extra_sft", type=Path, nargs="*",
                        default=[SHARED / "alpaca_zh" / "alpaca_data_zh_1517.json"],
                        help="more Alpaca JSON for SFT (besides the demo asset's 900 records)")
    for name in Profile.__dataclass_fields__:
        parser.add_argument(f"--{name}", type=int, default=None, help=f"override the profile's {name}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dataclasses import replace

    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name in Profile.__dataclass_fields__}
    profile = replace(PROFILES[args.profile], **{k: v for k, v in overrides.items() if v is not None})
    report = Experiment(args, profile).run()
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
