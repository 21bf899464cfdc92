import pytest
import torch
from transformers import AutoTokenizer

from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.model_loading import build_causal_lm, resize_vocabulary, tiny_llama_config
from tokenization.errors import UserError


def test_random_init_is_reproducible_from_the_seed_and_leaves_global_rng_alone() -> None:
    config = tiny_llama_config(vocab_size=100)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = build_causal_lm(model_config=config, init_seed=7), build_causal_lm(model_config=config, init_seed=7)
    c = build_causal_lm(model_config=config, init_seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert a.config._attn_implementation == "sdpa"


def test_resize_keeps_original_rows_and_starts_new_rows_at_the_mean() -> None:
    model = build_causal_lm(model_config=tiny_llama_config(vocab_size=100))
    before_embed, before_head = model.model.embed_tokens.weight.clone(), model.lm_head.weight.clone()
    assert resize_vocabulary(model, 130) == 100
    for before, after in ((before_embed, model.model.embed_tokens.weight), (before_head, model.lm_head.weight)):
        assert after.shape == (130, 64)
        assert torch.equal(after[:100], before)
        torch.testing.assert_close(after[100:], before.mean(0).expand(30, -1))
    assert model.config.vocab_size == 130
    with pytest.raises(UserError, match="refusing to drop rows"):
        resize_vocabulary(model, 120)


def test_module_grows_to_the_tokenizer(zh_tokenizer_dir) -> None:
    module = CausalLMModule(model_config=tiny_llama_config(vocab_size=32000), tokenizer=str(zh_tokenizer_dir))
    module.configure_model()
    rows = len(AutoTokenizer.from_pretrained(zh_tokenizer_dir))
    assert module.causal_lm.get_input_embeddings().weight.shape[0] == rows > 32000
    assert module.original_vocab_size == 32000


def test_hf_directory_round_trip(tmp_path) -> None:
    model = build_causal_lm(model_config=tiny_llama_config(vocab_size=100), init_seed=3)
    model.save_pretrained(tmp_path)
    loaded = build_causal_lm(pretrained=tmp_path)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.parameters()))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_causal_lm(pretrained=tmp_path / "missing")
