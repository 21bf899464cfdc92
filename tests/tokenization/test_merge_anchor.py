import hashlib

import pytest

from tokenization.merge import merge_tokenizers

# sha256 of the released Chinese-LLaMA tokenizer (../shared/data/tokenizers/expected/); the Chinese-Alpaca one
# (with --pad_token "[PAD]") is checked through the CLI in tests/cli/test_tokenizer_cli.py.
CHINESE_LLAMA_V1_SHA256 = "e2676d4ca29ca1750f6ff203328d73b189321dc5776ceede037cbd36541d70c0"


@pytest.mark.shared_data
def test_anchor_merge_is_byte_identical_to_the_released_tokenizer(
    llama_tokenizer_model, chinese_sp_model, shared_data, tmp_path
) -> None:
    expected = shared_data / "tokenizers" / "expected" / "chinese_llama_v1_49953.model"
    report = merge_tokenizers(llama_tokenizer_model, chinese_sp_model, tmp_path / "out", "anchor")
    written = (tmp_path / "out" / "tokenizer.model").read_bytes()
    assert written == expected.read_bytes()
    assert hashlib.sha256(written).hexdigest() == CHINESE_LLAMA_V1_SHA256 == report["tokenizer_model_sha256"]
    assert report["total_pieces"] == 49953
    assert report["added_pieces"] == 20000 - 2047
