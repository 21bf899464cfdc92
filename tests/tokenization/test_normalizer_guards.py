"""Models whose normalizer strips extra whitespace (SentencePiece's training default) are handled honestly."""

from pathlib import Path

import pytest

from tokenization.hf_tokenizer_files import build_tokenizer
from tokenization.reachability import unreachable_piece_ids
from tokenization.sentencepiece_proto import copy_proto, load_model_proto
from tokenization.train import TrainArgs, TrainingFailed, train_sentencepiece


def stripping(model: Path):
    proto = copy_proto(load_model_proto(model))
    proto.normalizer_spec.remove_extra_whitespaces = True
    return proto


def test_leading_space_pieces_stay_reachable_when_the_normalizer_strips_whitespace(base_tokenizer_model) -> None:
    assert unreachable_piece_ids(stripping(base_tokenizer_model)) == []


def test_tokenizer_json_refuses_a_normalizer_it_cannot_reproduce(base_tokenizer_model) -> None:
    with pytest.raises(ValueError, match="not reproduced by tokenizer.json"):
        build_tokenizer(stripping(base_tokenizer_model))


def test_sentence_length_below_one_character_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("中文\n", encoding="utf-8")
    args = TrainArgs(inputs=[str(tmp_path / "a.txt")], model_prefix=str(tmp_path / "m"), max_sentence_length=2)
    with pytest.raises(TrainingFailed, match="at least 4 bytes"):
        train_sentencepiece(args)
