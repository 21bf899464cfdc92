"""WikiBlocksDataModule on real Chinese text: exact token accounting, order, split, cache, bad records."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tokenization.corpus import BadRecordError
from tokenization.errors import UserError
from datamodules.doc_split import validation_mask
from datamodules.resumable_loader import ResumableLoader
from datamodules.token_cache import TOKENS_FILE
from datamodules.wiki_blocks import WikiBlocksDataModule


@pytest.fixture(scope="module")
def tokenizer(zh_tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(zh_tokenizer_dir)


def wiki_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def wiki_dm(zh_tokenizer_dir: Path, wiki_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> WikiBlocksDataModule:
    dm = WikiBlocksDataModule(
        str(zh_tokenizer_dir), str(wiki_sample), cache_dir=str(tmp_path_factory.mktemp("cache")), num_proc=1,
        val_fraction=0.1,
    )
    dm.setup()
    return dm


def framed(tokenizer, text: str) -> list[int]:
    return [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]


def test_exact_token_accounting_and_blocks_reproduce_documents_in_order(wiki_dm, wiki_sample, tokenizer) -> None:
    texts = wiki_texts(wiki_sample)
    report = wiki_dm.prepare().report(wiki_dm.block_size)
    encoded = [framed(tokenizer, t) for t in texts]
    assert report["documents"] == len(texts) == 30
    assert report["tokens"] == sum(len(e) for e in encoded)
    is_val = wiki_dm.cache.is_val()
    assert report["val_documents"] == int(is_val.sum()) == round(0.1 * 30)
    train_stream = [t for e, v in zip(encoded, is_val) if not v for t in e]
    val_stream = [t for e, v in zip(encoded, is_val) if v for t in e]
    bs = wiki_dm.block_size
    assert report["train_blocks"] == len(wiki_dm.train_set) == len(train_stream) // bs
    assert report["val_blocks"] == len(wiki_dm.val_set) == len(val_stream) // bs
    assert report["dropped_tail_tokens"] == len(train_stream) % bs + len(val_stream) % bs
    blocks = np.concatenate([wiki_dm.train_set.block(i) for i in range(len(wiki_dm.train_set))])
    assert blocks.tolist() == train_stream[: len(blocks)]
    val_blocks = np.concatenate([wiki_dm.val_set[i]["input_ids"].numpy() for i in range(len(wiki_dm.val_set))])
    assert val_blocks.tolist() == val_stream[: len(val_blocks)]
    # decoding the stream gives back the documents, in corpus order, each framed by BOS ... EOS
    train_texts = [t for t, v in zip(texts, is_val) if not v]
    assert blocks[0] == tokenizer.bos_token_id
    spans = np.split(blocks, np.flatnonzero(blocks == tokenizer.bos_token_id)[1:])
    assert len(spans) >= len(train_texts) - 1  # only the last document may reach into the dropped tail
    for span, text in zip(spans[:-1], train_texts):
        assert span[-1] == tokenizer.eos_token_id and tokenizer.decode(span[1:-1].tolist()) == text


def test_batches_are_long_tensors_with_labels(wiki_dm) -> None:
    batch = next(iter(wiki_dm.train_dataloader()))
    assert set(batch) == {"input_ids", "labels"}
    assert batch["input_ids"].shape == (16, 512) and str(batch["input_ids"].dtype) == "torch.int64"
    assert (batch["labels"] == batch["input_ids"]).all()
    val = next(iter(wiki_dm.val_dataloader()))
    assert val["input_ids"].shape == (min(16, len(wiki_dm.val_set)), 512)


def test_cache_is_reused_and_invalidated_by_what_changes_the_result(wiki_dm, wiki_sample, tmp_path) -> None:
    again = wiki_dm.prepare()
    assert not again.built and again.cache.path == wiki_dm.cache.path
    corpus = tmp_path / "wiki.jsonl"
    shutil.copy(wiki_sample, corpus)
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)[:6]
    corpus.write_text("".join(lines), encoding="utf-8")
    args = dict(tokenizer=wiki_dm.tokenizer, inputs=str(corpus), cache_dir=str(tmp_path / "c"), num_proc=1)
    base = WikiBlocksDataModule(**args, block_size=64).prepare()
    assert base.built
    assert not WikiBlocksDataModule(**args, block_size=64).prepare().built
    for changed in ({"seed": 1}, {"val_documents": 2}, {"text_field": "title"}):
        other = WikiBlocksDataModule(**{**args, "block_size": 64, **changed}).prepare()
        assert other.built and other.cache.path != base.cache.path, changed
    longer = WikiBlocksDataModule(**args, block_size=128)  # the cache holds flat tokens: blocks are cut when read
    assert not longer.prepare().built
    longer.setup()
    assert longer.cache.path == base.cache.path and longer.train_set.block(0).size == 128
    os.utime(corpus, ns=(1, 1))  # same bytes, new modification time: rebuilt
    assert WikiBlocksDataModule(**args, block_size=64).prepare().built


def test_tokenizer_change_invalidates_the_cache(wiki_dm, tmp_path) -> None:
    from transformers import AutoTokenizer

    (tmp_path / "a.txt").write_text("维基百科全书\n", encoding="utf-8")
    tok = AutoTokenizer.from_pretrained(wiki_dm.tokenizer)
    tok.add_tokens(["维基百科全书"])
    tok.save_pretrained(tmp_path / "tok2")
    built = [
        WikiBlocksDataModule(t, str(tmp_path / "a.txt"), cache_dir=str(tmp_path), num_proc=1, val_fraction=0).prepare()
        for t in (wiki_dm.tokenizer, str(tmp_path / "tok2"))
    ]
    assert built[0].cache.path != built[1].cache.path
    assert built[0].cache.meta["tokens"] > built[1].cache.meta["tokens"] == 3


def test_half_written_cache_is_rebuilt_not_used(wiki_dm, wiki_sample, tmp_path) -> None:
    corpus = tmp_path / "wiki.jsonl"
    corpus.write_text("".join(wiki_sample.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8")
    args = dict(tokenizer=wiki_dm.tokenizer, inputs=str(corpus), cache_dir=str(tmp_path / "c"), num_proc=1)
    first = WikiBlocksDataModule(**args).prepare()
    good = (first.cache.path / TOKENS_FILE).read_bytes()
    os.truncate(first.cache.path / TOKENS_FILE, len(good) // 2)
    with pytest.warns(UserWarning, match="incomplete or corrupt"):
        rebuilt = WikiBlocksDataModule(**args).prepare()
    assert rebuilt.built and (rebuilt.cache.path / TOKENS_FILE).read_bytes() == good


def test_txt_identical_for_any_number_of_workers(zh_tokenizer_dir, paragraph_sample, tokenizer, tmp_path) -> None:
    # 200 Wikipedia paragraphs, one a line; a directory is enough as input
    texts = wiki_texts(paragraph_sample)
    news = tmp_path / "paragraphs" / "part00.txt"
    news.parent.mkdir()
    news.write_text("\n".join(texts) + "\n", encoding="utf-8")
    results = []
    for num_proc, chunk_bytes in ((1, 1 << 20), (2, 30_000)):
        dm = WikiBlocksDataModule(
            str(zh_tokenizer_dir),
            str(news.parent),
            block_size=256,
            cache_dir=str(tmp_path / str(num_proc)),
            num_proc=num_proc,
            chunk_bytes=chunk_bytes,
            val_documents=20,
        )
        report = dm.prepare().report(256)
        results.append((report, dm.cache.tokens().tobytes(), dm.cache.is_val().tolist()))
    (one, tokens_one, split_one), (two, tokens_two, split_two) = results
    assert tokens_one == tokens_two and split_one == split_two
    assert {k: v for k, v in one.items() if k not in ("seconds", "docs_per_s", "cache_path")} == {
        k: v for k, v in two.items() if k not in ("seconds", "docs_per_s", "cache_path")
    }
    assert one["documents"] == len(texts) == 200 and one["val_documents"] == 20
    lengths = [len(e) + 2 for e in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    assert one["tokens"] == sum(lengths)


def test_fast_path_is_opt_in_and_changes_the_speed_not_the_ids(wiki_dm, zh_tokenizer_dir, wiki_sample, tmp_path) -> None:
    assert wiki_dm.prepare().report(wiki_dm.block_size)["encoded_by"] == {
        "sentencepiece": 0, "tokenizers": 30, "note": "tokenizers only: fast_path is off"
    }
    fast = WikiBlocksDataModule(
        str(zh_tokenizer_dir), str(wiki_sample), cache_dir=str(tmp_path), num_proc=1, val_fraction=0.1, fast_path=True
    ).prepare()
    encoded_by = fast.report(wiki_dm.block_size)["encoded_by"]
    assert encoded_by["sentencepiece"] >= 28 and encoded_by["sentencepiece"] + encoded_by["tokenizers"] == 30
    assert encoded_by["note"].startswith("sentencepiece where proven")
    assert fast.cache.path.name == wiki_dm.cache.path.name  # same key: the setting cannot change the ids
    assert (fast.cache.path / TOKENS_FILE).read_bytes() == (wiki_dm.cache.path / TOKENS_FILE).read_bytes()


def test_split_is_seeded_exact_and_stable(wiki_dm) -> None:
    n = wiki_dm.cache.meta["documents"]
    assert (wiki_dm.cache.is_val() == validation_mask(n, 42, 0.1, None)).all()
    a, b, c = validation_mask(n, 42, 0.5, 10), validation_mask(n, 42, 0.0, 10), validation_mask(n, 7, 0.0, 10)
    assert a.sum() == 10 and (a == b).all() and not (a == c).all()
    assert validation_mask(n, 42, 0.2, None).sum() == 6 and validation_mask(n, 42, 0.0, None).sum() == 0


def test_two_ranks_read_disjoint_blocks_that_cover_the_train_split(wiki_dm) -> None:
    ranks = [
        ResumableLoader(wiki_dm.train_set, 16, seed=wiki_dm.seed, rank=r, world_size=2) for r in range(2)
    ]
    seen = [{tuple(row.tolist()) for batch in loader for row in batch["input_ids"]} for loader in ranks]
    assert not seen[0] & seen[1]
    n = len(wiki_dm.train_set)
    per_rank = (n // 2) // 16 * 16
    assert len(seen[0]) == len(seen[1]) == per_rank
    every = {tuple(wiki_dm.train_set.block(i).tolist()) for i in range(n)}
    assert seen[0] | seen[1] <= every and len(every - (seen[0] | seen[1])) == n - 2 * per_rank


BAD_LINES = {  # case: (reason, line)
    "invalid_json": ("invalid_json", b'{"text": "\xe5\x8c\x97\xe4\xba\xac" \n'),
    "missing_text": ("missing_text", b'{"title": "no text"}\n'),
    "non_string_text": ("non_string_text", b'{"text": 42}\n'),
    "invalid_utf8": ("invalid_utf8", b'{"text": "\xff\xfe"}\n'),
    "lone_surrogate": ("invalid_utf8", b'{"text": "half a pair \\ud800 here"}\n'),
    "empty_document": ("empty_document", b'{"text": "   "}\n'),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_records_error_with_file_line_or_are_counted(case, zh_tokenizer_dir, tmp_path) -> None:
    reason, bad = BAD_LINES[case]
    good = '{"text": "中华人民共和国成立于1949年。"}\n'.encode()
    corpus = tmp_path / "c.jsonl.gz"
    with gzip.open(corpus, "wb") as handle:
        handle.write(good + bad + good)
    args = dict(tokenizer=str(zh_tokenizer_dir), inputs=str(tmp_path / "*.jsonl.gz"), block_size=8, num_proc=1)
    with pytest.raises(BadRecordError, match=r"c\.jsonl\.gz:2: .*on_bad_record=skip"):
        WikiBlocksDataModule(**args, cache_dir=str(tmp_path / "e")).prepare()
    assert not list((tmp_path / "e").iterdir())  # nothing half-written left behind
    report = WikiBlocksDataModule(**args, cache_dir=str(tmp_path / "s"), on_bad_record="skip", val_fraction=0.0)
    result = report.prepare().report(8)
    assert result["documents"] == 2
    assert result["skipped"]["total"] == 1 and result["skipped"]["by_reason"][reason] == 1
    assert result["skipped"]["first"][0].startswith(f"{corpus.resolve()}:2: {reason}")


def test_missing_input_and_tokenizer_are_named(zh_tokenizer_dir, tmp_path) -> None:
    with pytest.raises(UserError, match=r"data\.inputs: .*nowhere\.jsonl: input not found"):
        WikiBlocksDataModule(str(zh_tokenizer_dir), str(tmp_path / "nowhere.jsonl")).prepare()
    (tmp_path / "a.txt").write_text("一\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="no_tokenizer"):
        WikiBlocksDataModule(str(tmp_path / "no_tokenizer"), str(tmp_path / "a.txt")).prepare()


def test_too_small_validation_split_is_explained(zh_tokenizer_dir, tmp_path) -> None:
    (tmp_path / "a.txt").write_text("一二三\n四五六\n七八九\n", encoding="utf-8")
    dm = WikiBlocksDataModule(
        str(zh_tokenizer_dir), str(tmp_path / "a.txt"), block_size=64, cache_dir=str(tmp_path / "c"), num_proc=1
    )
    dm.setup()
    with pytest.raises(UserError, match="less than one block of 64"):
        dm.val_dataloader()
    no_val = WikiBlocksDataModule(
        str(zh_tokenizer_dir), str(tmp_path / "a.txt"), block_size=4, cache_dir=str(tmp_path / "c"), num_proc=1,
        val_fraction=0.0,
    )
    no_val.setup()
    assert no_val.val_dataloader() == []  # Lightning skips validation
    with pytest.raises(UserError, match="leaving none for training"):
        WikiBlocksDataModule(str(zh_tokenizer_dir), str(tmp_path / "a.txt"), val_documents=3, num_proc=1,
                             cache_dir=str(tmp_path / "d")).prepare()
