import pytest

from tokenization.sentencepiece_proto import NotASentencePieceModel, load_model_proto, resolve_model_file


def test_loads_a_model_file_or_a_directory_holding_tokenizer_model(base_tokenizer_model) -> None:
    assert len(load_model_proto(base_tokenizer_model).pieces) == 32000
    assert resolve_model_file(base_tokenizer_model.parent) == base_tokenizer_model


def test_missing_file_is_refused_naming_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.model: file not found; pass the path"):
        load_model_proto(tmp_path / "nope.model")


def test_tokenizer_json_only_directory_is_refused(tmp_path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    with pytest.raises(NotASentencePieceModel, match="tokenizer.json only"):
        load_model_proto(tmp_path)
    with pytest.raises(NotASentencePieceModel, match=r"tokenizer\.json: this is a JSON file.*not a SentencePiece"):
        load_model_proto(tmp_path / "tokenizer.json")


def test_garbage_and_truncated_files_are_refused(tmp_path, base_tokenizer_model) -> None:
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"\xff\x00 certainly not protobuf \x13\x37" * 10)
    with pytest.raises(NotASentencePieceModel, match=r"garbage\.model"):
        load_model_proto(garbage)
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(base_tokenizer_model.read_bytes()[:1000])
    with pytest.raises(NotASentencePieceModel, match=r"truncated\.model"):
        load_model_proto(truncated)
