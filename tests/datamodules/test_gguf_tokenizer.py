"""Both datamodules take a ``.gguf`` as their tokenizer (SmolLM2's byte-level BPE, read from the file's metadata):
the token cache frames each document BOS ... EOS with the GGUF's ids and is keyed by the tokenizer's content, so
the same tokenizer saved as a directory reuses it; SFT examples end with the GGUF's EOS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.alpaca_sft import AlpacaSFTDataModule
from datamodules.demo_assets import asset_path
from datamodules.wiki_blocks import WikiBlocksDataModule
from tests.conftest import read_jsonl_texts
from tokenization.pretrained_tokenizer import load_tokenizer

pytestmark = pytest.mark.demo_assets


@pytest.fixture(scope="module")
def gguf() -> Path:
    return asset_path("smollm2_gguf")


def test_wiki_blocks_reads_a_gguf_tokenizer_and_keys_the_cache_by_its_content(gguf: Path, paragraph_sample: Path,
                                                                                tmp_path: Path) -> None:
    tokenizer = load_tokenizer(gguf)
    texts = read_jsonl_texts(paragraph_sample)
    data = WikiBlocksDataModule(str(gguf), str(paragraph_sample), block_size=32, cache_dir=str(tmp_path / "cache"),
                                num_proc=1, val_documents=1)
    prepared = data.prepare()
    assert prepared.built and prepared.cache.meta["tokens"] == sum(
        len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2 for text in texts)
    data.setup()
    stream = np.concatenate([data.train_set.block(i) for i in range(len(data.train_set))])
    first = stream[: np.flatnonzero(stream == tokenizer.eos_token_id)[0] + 1]
    assert first[0] == tokenizer.bos_token_id == 1 and first[-1] == tokenizer.eos_token_id == 2
    train_texts = [t for t, held in zip(texts, data.cache.is_val()) if not held]
    assert tokenizer.decode(first[1:-1].tolist()) == train_texts[0]

    saved = tmp_path / "saved"
    tokenizer.save_pretrained(saved)  # the same tokenizer as files: the same cache
    again = WikiBlocksDataModule(str(saved), str(paragraph_sample), block_size=32, cache_dir=str(tmp_path / "cache"),
                                 num_proc=1, val_documents=1).prepare()
    assert not again.built and again.cache.path == prepared.cache.path


def test_alpaca_sft_reads_a_gguf_tokenizer(gguf: Path, alpaca_sample: Path) -> None:
    data = AlpacaSFTDataModule(str(gguf), str(alpaca_sample), max_seq_length=64, batch_size=4, val_examples=4)
    data.setup("fit")
    example = data.train_dataset.examples[0]
    assert example.input_ids[0] == 1 and example.input_ids[-1] == 2  # the GGUF's <|im_start|> ... <|im_end|>
    assert data.pad_id is not None and len(data.train_dataset) > 100
