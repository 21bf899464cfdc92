"""The SmolLM2 experiment's report: ``docs/experiments/smollm2.md`` and its plot, from ``results.json`` alone."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from tokenization.atomic_write import atomic_file

#: (results key, row name) of the recipe, in order; then the arms.
RECIPE = (("base", "SmolLM2-135M-Instruct as it is"), ("extended_mean", "extended, new rows at `mean`, untrained"),
          ("extended_subtoken_mean", "extended, new rows at `subtoken_mean`, untrained"),
          ("stage1_mean", "stage 1 (embedding-only), `mean` init"),
          ("stage1_subtoken_mean", "stage 1 (embedding-only), `subtoken_mean` init"),
          ("stage2", "stage 2 (LoRA + embedding), after the better stage 1"), ("sft", "SFT (Chinese Alpaca)"))
ARMS = (("stage2_without_stage1", "arm: stage 2 without stage 1, same tokens"),
        ("no_extension", "arm: no extension, stage 2 for the recipe's wall-clock time"))
TARGETS = {"cpu": 0.75, "gpu": 0.6}
PACKAGES = ("torch", "transformers", "lightning", "peft", "tokenizers")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{cpu_name()}, {os.cpu_count()} cores"
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return f"{device}; Python {platform.python_version()}; {versions}"


def seen(entry: dict) -> str:
    if entry.get("tokens"):
        return f"{entry['tokens']:,} tokens"
    return f"{entry['examples']:,} examples" if entry.get("examples") else "0"


def minutes(entry: dict) -> str:
    return f"{entry['seconds'] / 60:.1f} min" if entry.get("seconds") else "-"


def pace(entry: dict) -> str:
    return f"{entry['tokens'] / entry['seconds']:.0f}" if entry.get("tokens") and entry.get("seconds") else "-"


def table(results: dict, rows: tuple[tuple[str, str], ...]) -> list[str]:
    base = results["base"]["eval"]
    lines = []
    for key, name in rows:
        if key not in results:
            continue
        zh, en = results[key]["eval"]["zh"], results[key]["eval"]["en"]
        lines.append(f"| {name} | {seen(results[key])} | {minutes(results[key])} | {pace(results[key])} | "
                     f"{zh['bits_per_char']:.3f} "
                     f"({zh['bits_per_char'] / base['zh']['bits_per_char']:.3f}x) | {en['bits_per_char']:.3f} "
                     f"({en['bits_per_char'] / base['en']['bits_per_char']:.3f}x) | {zh['bits_per_byte']:.3f} | "
                     f"{zh['tokens_per_char']:.3f} |")
    return lines


def plot(results: dict, path: Path) -> None:
    """Held-out Chinese bits per byte after each step of the recipe (a line) and each arm (a marker)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(10, 4.5))
    steps = [(name.split(",")[0].split(" (")[0], results[key]["eval"]["zh"]["bits_per_byte"])
             for key, name in RECIPE if key in results and key not in ("extended_mean", "stage1_mean")]
    axis.plot(range(len(steps)), [b for _, b in steps], marker="o", label="the recipe (subtoken_mean where it wins)")
    for x, (_, bits) in enumerate(steps):
        axis.annotate(f"{bits:.3f}", (x, bits), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    for marker, (key, name) in zip("sD", ARMS):
        if key in results:
            x = [label for label, _ in steps].index("stage 2") if any(l == "stage 2" for l, _ in steps) else len(steps)
            axis.scatter([x], [results[key]["eval"]["zh"]["bits_per_byte"]], marker=marker, s=60, label=name, zorder=3)
    axis.set_xticks(range(len(steps)), [label for label, _ in steps], fontsize=8)
    axis.set_ylabel("held-out Chinese Wikipedia, bits per UTF-8 byte")
    axis.set_title("SmolLM2-135M learning Chinese (lower is better)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(path) as partial:
        figure.savefig(partial, format="png", dpi=120)
    plt.close(figure)


def portable(command: str, root: Path) -> str:
    """A recorded command with its paths relative to the project root (``../shared/...`` beside it) and home."""
    return command.replace(f"{root}/", "").replace(f"{root.parent}/", "../").replace(f"{Path.home()}/", "$HOME/")


def write_report(results: dict, path: Path, best_init: str, root: Path) -> Path:
    """Writes the Markdown report and ``<stem>.png`` beside it; returns the report's path. ``root`` is the
    directory the recorded commands ran from (their paths are shown relative to it)."""
    setup = results["setup"]
    picture = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    plot(results, picture)
    extension = results["extension"]
    total_minutes = sum(v["wall_seconds"] for v in results.values() if isinstance(v, dict) and "wall_seconds" in v) / 60
    gpu = path.with_name(f"{path.stem}_gpu.md")
    header = ("| | seen | training time | tokens/s | zh bits/char (x base) | en bits/char (x base) | zh bits/byte | "
              "zh tokens/char |")
    lines = [
        "# Teaching SmolLM2-135M Chinese: the recipe measured at every stage",
        "",
        f"Written by `zhllama experiment --profile {setup['profile']}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d}; its steps took {total_minutes:.0f} minutes in all. Machine and "
        f"versions: {machine()}.",
        "",
        "The `gpu` profile (`bench/gpu_experiment.sh`, one H200) "
        + (f"ran: see [{gpu.name}]({gpu.name})." if gpu.is_file() else "has not run yet: no H200 was available.")
        if setup["profile"] == "cpu" else "The `cpu` profile's report is [smollm2.md](smollm2.md).",
        "",
        f"Held-out Chinese: the first sentences (up to {setup['heldout_chars']} characters) of "
        f"{setup['heldout_articles']} articles split off the Wikipedia sample "
        f"({setup['heldout_chars_total']:,} characters; {', '.join(setup['heldout_titles'])}); English: "
        f"{setup['english_paragraphs']} paragraphs of Python standard-library docstrings "
        f"({setup['english_chars_total']:,} characters). Neither is trained on. Training text "
        f"({setup['training_chars']:,} characters): {', '.join(Path(p).name for p in setup['training_text'])}. "
        "Every figure is `zhllama eval` (window 512, stride 256, fp32). Training time is Lightning's training-loop "
        "clock (model loading and evaluation excluded); tokens/s shows how busy the machine was.",
        "",
        header, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *table(results, RECIPE + ARMS),
        "",
        f"![held-out Chinese bits per byte by stage]({picture.name})",
        "",
        "## Tokenizer",
        "",
        f"{extension['vocab_size'] - 49152:,} byte-level BPE merges learned on the training text continue "
        f"SmolLM2's 49152 ({extension['vocab_size']:,} tokens, {extension['seconds']:.0f} s to train and merge). "
        f"Tokens per character on the held-out Chinese: {extension['base_tokens_per_char']:.3f} -> "
        f"{extension['tokens_per_char']:.3f} (**{extension['tokens_per_char'] / extension['base_tokens_per_char']:.2f}x**"
        "; target <= 0.6x).",
        "",
    ]
    lines += targets(results, setup["profile"], best_init)
    lines += ["", "## The 5 prompts, before (SmolLM2-Instruct, its own chat format) and after SFT (alpaca_v1), "
              "greedy", ""]
    generations = results.get("generations", {"prompts": []})
    for i, prompt in enumerate(generations["prompts"]):
        lines += [f"**{prompt}**", *(f"- {when}: {' '.join(generations[when][i].split())}" for when in ("before", "after")),
                  ""]
    lines += ["## Exact commands", "", "From the project root, in this order (`--workdir` is `.experiment/`):", "",
              "```bash", *(portable(c, root) for c in results.get("commands", [])), "```", ""]
    with atomic_file(path) as partial:
        partial.write_text("\n".join(lines), encoding="utf-8")
    return path


def targets(results: dict, profile: str, best_init: str) -> list[str]:
    """The issue's questions, answered from the figures."""
    base = results["base"]["eval"]

    def zh(key: str) -> float:
        return results[key]["eval"]["zh"]["bits_per_char"]

    def en(key: str) -> float:
        return results[key]["eval"]["en"]["bits_per_char"]

    lines = ["## Answers", ""]
    if "stage1_mean" in results and "stage1_subtoken_mean" in results:
        lines.append(
            f"- **Initialising new rows.** Right after extension, untrained: zh {zh('extended_mean'):.3f} (`mean`) vs "
            f"{zh('extended_subtoken_mean'):.3f} (`subtoken_mean`) bits/char, en {en('extended_mean'):.3f} vs "
            f"{en('extended_subtoken_mean'):.3f}; after stage 1: zh {zh('stage1_mean'):.3f} vs "
            f"{zh('stage1_subtoken_mean'):.3f}, en {en('stage1_mean'):.3f} vs {en('stage1_subtoken_mean'):.3f}. "
            f"The recipe continued from `{best_init}` (the lower zh bits/char after stage 1).")
    if "stage2" in results and "stage2_without_stage1" in results:
        verdict = "helps" if zh("stage2") < zh("stage2_without_stage1") else "does not help"
        lines.append(
            f"- **Is stage 1 worth it?** Stage 1 + stage 2: zh {zh('stage2'):.3f} bits/char; stage 2 alone on the "
            f"same tokens ({results['stage2_without_stage1']['tokens']:,}): {zh('stage2_without_stage1'):.3f}. "
            f"On this budget stage 1 {verdict}.")
    if "stage2" in results and "no_extension" in results:
        arm = results["no_extension"]
        ratio = zh("stage2") / zh("no_extension")
        lines.append(
            f"- **Extension vs none at equal wall clock** ({arm['budget_seconds'] / 60:.1f} min: tokenizer, stage 1 "
            f"and stage 2 of the recipe; the arm ran {arm['steps']} of {arm['planned_steps']} planned steps): "
            f"zh {zh('stage2'):.3f} (recipe) vs {zh('no_extension'):.3f} (no extension) bits/char, "
            f"{ratio:.3f}x: extension {'wins' if ratio < 1 else 'loses'} by {abs(1 - ratio) * 100:.1f}%. The arm "
            f"trained at {pace(arm)} tokens/s, the recipe's stage 2 at {pace(results['stage2'])}.")
    if "stage2" in results:
        target = TARGETS[profile]
        zh_ratio = zh("stage2") / base["zh"]["bits_per_char"]
        en_ratio = en("stage2") / base["en"]["bits_per_char"]
        lines.append(
            f"- **Targets after stage 2** ({profile} profile): zh {zh_ratio:.3f}x the base (target <= {target}x: "
            f"{'met' if zh_ratio <= target else 'missed'}); en {en_ratio:.3f}x (target <= 1.05x: "
            f"{'met' if en_ratio <= 1.05 else 'missed'}).")
    lines.append(
        "- **The tied embedding and head.** SmolLM2 has one matrix for both. Stage 1 (`EmbeddingOnly`, "
        "`new_rows_only`) trains that matrix's new rows only, so input and output of the new tokens learn together "
        "and every old row, hence English, stays bit-identical; `include_lm_head` has nothing more to add. Stage 2 "
        "and SFT (`LoRAWithEmbeddings` with embedding and head) train the one matrix whole, once, with one "
        "optimizer state, and the checkpoint stores it once (`docs/training.md`).")
    return lines
