"""``model.new_token_init``: new rows at the mean of the old rows, or at the mean of the base rows of the tokens the
base tokenizer splits each new token into; recorded, so restore, ``init_from`` and export rebuild the same rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.checkpoint_io import restore_module
from lightning_modules.hf_export import export_model
from lightning_modules.model_loading import build_causal_lm, resize_vocabulary, tiny_llama_config
from tests.lightning_modules.tiny_training import snapshot, tiny_trainer
from tests.tokenization.byte_level_bases import write_jsonl, write_toy_base
from tokenization.bpe_merge import merge_bpe_extension
from tokenization.bpe_training import train_bpe_extension
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import load_tokenizer
from tokenization.subtoken_ids import subtoken_ids

EMBED, HEAD = "model.embed_tokens.weight", "lm_head.weight"


def tiny_model(vocab_size: int = 16, tied: bool = False) -> LlamaForCausalLM:
    return build_causal_lm(None, {**tiny_llama_config(vocab_size=vocab_size), "tie_word_embeddings": tied}, 3)


def test_new_rows_are_the_means_of_their_subtoken_rows_for_embedding_and_untied_head() -> None:
    model = tiny_model()
    old_embed = model.get_input_embeddings().weight.detach().clone()
    old_head = model.get_output_embeddings().weight.detach().clone()
    assert resize_vocabulary(model, 19, [[1, 2], [7], []]) == 16
    grown = (model.get_input_embeddings().weight, model.get_output_embeddings().weight)
    for new, old in zip(grown, (old_embed, old_head)):
        assert torch.equal(new[:16], old)
        torch.testing.assert_close(new[16], (old[1] + old[2]) / 2, rtol=0, atol=1e-7)
        assert torch.equal(new[17], old[7])
        assert torch.equal(new[18], old.mean(dim=0))  # a token the base cannot split: the mean of the old rows
    assert not torch.equal(model.get_input_embeddings().weight[16], model.get_output_embeddings().weight[16])


def test_a_tied_embedding_and_head_stay_one_weight() -> None:
    model = tiny_model(tied=True)
    old = model.get_input_embeddings().weight.detach().clone()
    resize_vocabulary(model, 18, [[4, 5, 6], [0]])
    weight = model.get_input_embeddings().weight
    assert weight is model.get_output_embeddings().weight
    assert torch.equal(weight[:16], old) and torch.equal(weight[17], old[0])
    torch.testing.assert_close(weight[16], old[4:7].mean(dim=0), rtol=0, atol=1e-7)


def test_subtoken_ids_of_another_vocabulary_are_refused() -> None:
    with pytest.raises(UserError, match="grows from 16 to 18"):
        resize_vocabulary(tiny_model(), 18, [[1]])
    with pytest.raises(UserError, match=r"\[16\] are not among the model's 16 old rows"):
        resize_vocabulary(tiny_model(), 17, [[16]])


@pytest.fixture(scope="module")
def pretrained(english_prose: list[str], wiki_articles: list[str], tmp_path_factory: pytest.TempPathFactory):
    """A tiny random-init HF model directory with a toy byte-level tokenizer, and that tokenizer extended with
    Chinese merges (the new tokens follow every base id)."""
    root = tmp_path_factory.mktemp("new_token_init")
    base = write_toy_base(root / "base", english_prose)
    corpus = write_jsonl(root / "wiki.jsonl", wiki_articles[:3])
    train_bpe_extension(base, [corpus], root / "learned.json", num_merges=150)
    merge_bpe_extension(base, root / "learned.json", root / "extended")
    rows = len(load_tokenizer(base))
    config = LlamaConfig(**tiny_llama_config(vocab_size=rows, max_position_embeddings=64))
    torch.manual_seed(11)
    LlamaForCausalLM(config).save_pretrained(base)
    return base, root / "extended"


def expected_rows(base: Path, extended: Path) -> dict[str, torch.Tensor]:
    """The base's embedding and head grown by hand: each new row the mean of its base tokens' rows."""
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    rows = model.get_input_embeddings().weight.shape[0]
    splits = subtoken_ids(load_tokenizer(base), load_tokenizer(extended), rows)
    grown = {}
    for name, weight in ((EMBED, model.get_input_embeddings().weight), (HEAD, model.get_output_embeddings().weight)):
        new = torch.stack([weight[ids].mean(dim=0) for ids in splits])
        grown[name] = torch.cat([weight, new]).detach()
    return grown


def test_default_mean_is_recorded_and_unchanged(pretrained) -> None:
    base, extended = pretrained
    module = CausalLMModule(pretrained=str(base), tokenizer=str(extended))
    module.configure_model()
    weight = module.causal_lm.get_input_embeddings().weight
    rows = len(load_tokenizer(base))
    assert module.lineage.new_token_init == "mean" and module.lineage.subtoken_ids is None
    assert torch.equal(weight[rows:], weight[:rows].mean(dim=0).expand(weight.shape[0] - rows, -1))


def test_a_random_init_base_has_no_tokenizer_to_split_with(zh_tokenizer_dir: Path) -> None:
    module = CausalLMModule(model_config=tiny_llama_config(vocab_size=32000), tokenizer=str(zh_tokenizer_dir),
                            new_token_init="subtoken_mean")
    with pytest.raises(UserError, match="model.new_token_init subtoken_mean .* use model.new_token_init mean"):
        module.configure_model()


def test_subtoken_rows_survive_fit_restore_init_from_and_export(pretrained, tmp_path: Path) -> None:
    base, extended = pretrained
    tokenizer = tmp_path / "tokenizer"  # deleted after the fit: the checkpoint carries what rebuilds the rows
    shutil.copytree(extended, tokenizer)
    expected = expected_rows(base, tokenizer)
    vocab = expected[EMBED].shape[0]
    module = CausalLMModule(pretrained=str(base), tokenizer=str(tokenizer), new_token_init="subtoken_mean",
                            learning_rate=1e-2, warmup_steps=0, loss_chunk_size=24)
    policy = LoRAWithEmbeddings(r=4, alpha=8, dropout=0.0, train_embeddings=False, train_lm_head=False)
    saver = ModelCheckpoint(dirpath=tmp_path / "run" / "checkpoints", save_last=True)
    ids = torch.randint(0, vocab, (4, 32), generator=torch.Generator().manual_seed(0))
    loader = DataLoader([{"input_ids": row, "labels": row.clone()} for row in ids], batch_size=2)
    tiny_trainer(tmp_path / "run", [policy, saver], max_steps=2, enable_checkpointing=True).fit(module, loader)
    fitted = snapshot(module)
    for name in (EMBED, HEAD):
        torch.testing.assert_close(fitted[name], expected[name], rtol=0, atol=1e-6)
    shutil.rmtree(tokenizer)

    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    restored = snapshot(restore_module(checkpoint))
    assert restored.keys() == fitted.keys() and all(torch.equal(restored[k], fitted[k]) for k in fitted)
    following = CausalLMModule(init_from=str(checkpoint))
    following.configure_model()
    for name, weight in ((EMBED, following.causal_lm.get_input_embeddings().weight),
                         (HEAD, following.causal_lm.get_output_embeddings().weight)):
        assert torch.equal(weight, fitted[name])
    exported = AutoModelForCausalLM.from_pretrained(export_model(checkpoint, tmp_path / "export", dtype="fp32"),
                                                    local_files_only=True)
    assert torch.equal(exported.get_input_embeddings().weight, fitted[EMBED])
    assert torch.equal(exported.get_output_embeddings().weight, fitted[HEAD])
