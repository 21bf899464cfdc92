"""A crafted checkpoint whose unpickling would run a shell command is refused by every command that reads one,
in one line with exit status 2, and the command never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.cli.console import in_process
from tests.cli.tiny_fit import TINY, small_corpus, tiny_fit_args



class ShellOnUnpickle:
    """Pickles as ``os.system("touch MARKER")``: what an unrestricted ``torch.load`` would call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "code_ran"
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "zhllama": ShellOnUnpickle(marker)}, path)
    torch.load(path, weights_only=False)  # the file is live: an unrestricted load runs the command
    assert marker.is_file()
    marker.unlink()
    return path, marker


def test_every_entry_point_refuses_a_crafted_pickle(crafted, zh_tokenizer_dir, wiki_sample, tmp_path) -> None:
    path, marker = crafted
    corpus = small_corpus(wiki_sample, tmp_path / "inputs")
    fit = lambda config: tiny_fit_args(config, zh_tokenizer_dir, corpus, tmp_path / "cache")  # noqa: E731
    commands = {
        "export": ["export", "--ckpt", str(path), "--output", str(tmp_path / "out")],
        "fit --model.init_from": ["fit", *fit("pt_lora.yaml"), "--model.init_from", str(path),
                                  "--trainer.default_root_dir", str(tmp_path / "run_init_from")],
        "fit --ckpt_path": ["fit", *fit("pt_embed.yaml"), "--model.model_config", TINY, "--ckpt_path", str(path),
                            "--trainer.default_root_dir", str(tmp_path / "run_resume")],
        "generate --model": ["generate", "--model", str(path), "--prompt", "你好"],
        "eval --model": ["eval", "--model", str(path), "--input", str(corpus)],
    }
    failures = []
    for name, argv in commands.items():
        result = in_process(*argv, cwd=tmp_path)
        last = (result.stderr.strip().splitlines() or [""])[-1]
        if marker.exists():
            failures.append(f"{name}: the crafted pickle ran")
        elif result.returncode != 2 or "Traceback" in result.stderr or not (
            last.startswith(f"zhllama {argv[0]}: ") and str(path) in last
        ):
            failures.append(f"{name}: exit {result.returncode}, stderr ends {result.stderr[-600:]!r}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "out").exists()
