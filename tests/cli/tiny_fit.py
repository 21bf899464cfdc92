"""The command line of a seconds-long ``zhllama fit`` on a tiny configs file: a 2-layer model, a 3-article corpus."""

from __future__ import annotations

import json
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "tiny"
TINY = json.dumps(
    {"vocab_size": 32000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
     "intermediate_size": 128, "max_position_embeddings": 64, "tie_word_embeddings": False}
)


def small_corpus(wiki_sample: Path, folder: Path) -> Path:
    """The first three articles of the shared Wikipedia sample, as ``folder/corpus.jsonl``."""
    lines = wiki_sample.read_text(encoding="utf-8").splitlines()[:3]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_fit_args(config: str, tokenizer: Path, corpus: Path, cache: Path) -> list[str]:
    """``--config configs/tiny/<config>`` with the data and the trainer cut down to seconds."""
    return [
        "--config", str(CONFIGS / config),
        "--data.init_args.tokenizer", str(tokenizer),
        "--data.init_args.inputs", str(corpus),
        "--data.init_args.cache_dir", str(cache),
        "--data.init_args.block_size", "32",
        "--data.init_args.batch_size", "2",
        "--data.init_args.val_documents", "1",
        "--data.init_args.num_proc", "1",
        "--trainer.val_check_interval", "2",
        "--trainer.limit_val_batches", "2",
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0",
    ]  # fmt: skip
