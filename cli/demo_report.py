"""The demo's picture: validation bits per byte before and after each stage, and the tokenizer's tokens per
character before and after the merge. ``zhllama demo`` writes it from the numbers it measured; the notebook
draws the same from a run's TensorBoard files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenization.atomic_write import atomic_file

#: (stage name, validation bits per byte before the stage, after it); None where it was not measured.
StageBits = tuple[str, float | None, float | None]


def report_figure(stages: Sequence[StageBits], tokens_per_char: dict[str, tuple[float, float]]):
    """A two-panel matplotlib figure: bits per byte by stage (before/after bars), tokens per character by text
    kind (base/merged bars)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    names = [name.split(":")[0] for name, _, _ in stages]
    for offset, index, label in ((-0.2, 1, "before the stage"), (0.2, 2, "after the stage")):
        values = [stage[index] if stage[index] is not None else float("nan") for stage in stages]
        bars = left.bar([x + offset for x in range(len(stages))], values, width=0.4, label=label)
        left.bar_label(bars, fmt="%.2f", fontsize=8)
    left.set_xticks(range(len(stages)), names)
    left.set_ylabel("validation bits per UTF-8 byte")
    left.set_title("what each stage taught (lower is better)")
    left.legend(loc="lower left")
    kinds = list(tokens_per_char)
    for offset, index, label in ((-0.2, 0, "base tokenizer"), (0.2, 1, "merged tokenizer")):
        bars = right.bar([x + offset for x in range(len(kinds))], [tokens_per_char[k][index] for k in kinds],
                         width=0.4, label=label)
        right.bar_label(bars, fmt="%.3f", fontsize=8)
    right.set_ylim(0, 1.3 * max(max(pair) for pair in tokens_per_char.values()))  # room for the legend
    right.set_xticks(range(len(kinds)), kinds)
    right.set_ylabel("tokens per character (held-out text)")
    right.set_title("tokenizer before / after the merge")
    right.legend(loc="upper right")
    figure.tight_layout()
    return figure


def write_report(path: Path, stages: Sequence[StageBits], tokens_per_char: dict[str, tuple[float, float]]) -> Path:
    """Saves :func:`report_figure` as a PNG at ``path`` (written aside, then renamed)."""
    from matplotlib import pyplot as plt

    figure = report_figure(stages, tokens_per_char)
    with atomic_file(path) as partial:
        figure.savefig(partial, format="png", dpi=120)
    plt.close(figure)
    return path
