"""Training on Chinese Wikipedia from tests/assets, in every input format the reader knows."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import sentencepiece as spm

from tests.conftest import read_jsonl_texts
from tokenization.corpus import BadRecordError
from tokenization.train import TrainArgs, TrainingFailed, split_long_line, train_sentencepiece


@pytest.fixture(scope="module")
def corpus_dir(paragraph_sample: Path, wiki_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 Wikipedia paragraphs, one a line (.txt), and 10 Wikipedia articles (.jsonl.gz) in one directory."""
    folder = tmp_path_factory.mktemp("corpus")
    paragraphs = read_jsonl_texts(paragraph_sample)
    (folder / "paragraphs.txt").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    wiki = wiki_sample.read_text(encoding="utf-8").splitlines()
    with gzip.open(folder / "wiki.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(wiki[:10]) + "\n")
    return folder


def test_trains_a_model_from_a_directory_of_txt_and_jsonl_gz(corpus_dir, wiki_articles, tmp_path) -> None:
    logged: list[str] = []
    args = TrainArgs(
        inputs=[corpus_dir], model_prefix=tmp_path / "zh" / "chinese", vocab_size=2000, character_coverage=0.98,
        num_threads=2,
    )
    result = train_sentencepiece(args, log=logged.append)
    assert result["read"]["documents"] == 210
    assert result["read"]["chars"] > 200_000 and result["skipped"]["total"] == 0
    assert "read 210 documents" in logged[0]
    assert sorted(p.name for p in (tmp_path / "zh").iterdir()) == ["chinese.model", "chinese.vocab"]
    sp = spm.SentencePieceProcessor(model_file=result["model"])
    assert sp.get_piece_size() == 2000
    held_out = wiki_articles[20:]  # not in the corpus: one piece a character would give more than 1 token a character
    assert sum(map(len, sp.encode(held_out))) < 0.9 * sum(map(len, held_out))  # measured 0.865


def test_sentence_sampling_and_bpe_are_options(corpus_dir, tmp_path) -> None:
    args = TrainArgs(
        inputs=[str(corpus_dir / "*.txt")], model_prefix=tmp_path / "bpe", vocab_size=2500, character_coverage=0.98,
        model_type="bpe", input_sentence_size=150, num_threads=2,
    )
    result = train_sentencepiece(args, log=lambda _: None)
    assert result["read"]["documents"] == 200  # all read, SentencePiece keeps a 150-sentence sample
    model = spm.SentencePieceProcessor(model_file=result["model"])
    assert model.get_piece_size() == 2500


def test_bad_record_stops_training_and_leaves_no_model(corpus_dir, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "你好，世界。"}\n{"text": broken\n', encoding="utf-8")
    args = TrainArgs(inputs=[corpus_dir / "paragraphs.txt", bad], model_prefix=tmp_path / "out" / "m", vocab_size=2000,
                     character_coverage=0.98, num_threads=2)
    with pytest.raises(BadRecordError, match=r"bad\.jsonl:2: invalid JSON"):
        train_sentencepiece(args, log=lambda _: None)
    assert list((tmp_path / "out").iterdir()) == []
    args.on_bad_record = "skip"
    result = train_sentencepiece(args, log=lambda _: None)
    assert result["skipped"]["by_reason"]["invalid_json"] == 1 and result["read"]["documents"] == 201


def test_impossible_options_are_refused_with_the_fix(corpus_dir, tmp_path) -> None:
    args = TrainArgs(inputs=[corpus_dir], model_prefix=tmp_path / "m", vocab_size=100, num_threads=2)
    with pytest.raises(TrainingFailed, match="--vocab_size"):
        train_sentencepiece(args, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_long_lines_are_cut_at_sentence_ends_within_the_byte_limit() -> None:
    line = "这是第一句。" * 300 + "没有句号" * 400
    parts = split_long_line(line, 4192)
    assert "".join(parts) == line
    assert all(len(p.encode("utf-8")) <= 4192 for p in parts)
    assert parts[0].endswith("。")
    assert split_long_line("短句。", 4192) == ["短句。"]
