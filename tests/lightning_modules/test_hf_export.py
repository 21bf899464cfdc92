"""Export round trips on a tiny LLaMA base (an HF directory) trained one "step" with LoRA + embeddings; outputs
written only where zhllama may write."""

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.hf_export import export_adapter, export_model
from lightning_modules.model_loading import tiny_llama_config
from tokenization.errors import UserError

BASE_VOCAB = 32000


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'pretrained' English-vocabulary base: 32000 rows, as LLaMA before the tokenizer extension."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("base")
    LlamaForCausalLM(LlamaConfig(**tiny_llama_config(vocab_size=BASE_VOCAB))).save_pretrained(out)
    return out


def trained_checkpoint(path: Path, policy, **hparams) -> tuple[Path, CausalLMModule]:
    """What `zhllama fit` writes after training: trained parameters perturbed, LoRA B non-zero."""
    module = CausalLMModule(**hparams)
    module.configure_model()
    module.apply_freeze_policy(policy)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path, module.eval()


@pytest.fixture(scope="module")
def lora_checkpoint(base_dir: Path, zh_tokenizer_dir: Path, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    return trained_checkpoint(path, LoRAWithEmbeddings(r=4, alpha=8), pretrained=str(base_dir), tokenizer=str(zh_tokenizer_dir))


def sample_ids(tokenizer) -> torch.Tensor:
    return torch.tensor([tokenizer("我们如何在日常生活中减少用水？ water")["input_ids"]])


def test_exported_model_loads_offline_with_the_training_modules_logits(lora_checkpoint, zh_tokenizer_dir, tmp_path):
    ckpt, module = lora_checkpoint
    out = export_model(ckpt, tmp_path / "hf", dtype="fp32", max_shard_size="3MB")
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    assert len(tokenizer) == len(AutoTokenizer.from_pretrained(zh_tokenizer_dir)) > BASE_VOCAB
    assert model.config.vocab_size == len(tokenizer) == model.get_input_embeddings().weight.shape[0]
    assert len(list(out.glob("model-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    ids = sample_ids(tokenizer)
    with torch.no_grad():
        expected = module.model(input_ids=ids).logits
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-4)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert (out / "tokenizer.model").read_bytes() == (zh_tokenizer_dir / "tokenizer.model").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # nothing left aside


def test_overwrite_replaces_only_an_earlier_export(lora_checkpoint, tmp_path):
    ckpt, _ = lora_checkpoint
    out = export_model(ckpt, tmp_path / "hf16")
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16
    with pytest.raises(UserError, match="holds an earlier zhllama output; pass --overwrite"):
        export_model(ckpt, out)
    export_model(ckpt, out, dtype="fp32", overwrite=True)
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.float32

    users = tmp_path / "my_project"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="non-empty directory that zhllama did not write"):
        export_model(ckpt, users, overwrite=True)
    assert [p.name for p in users.iterdir()] == ["notes.txt"] and (users / "notes.txt").read_text() == "mine"


def test_output_holding_the_checkpoint_is_refused(lora_checkpoint, tmp_path):
    ckpt, _ = lora_checkpoint
    for output in (ckpt.parent, ckpt.parent.parent):
        with pytest.raises(UserError, match=f"holds this command's input {ckpt.parent}"):
            export_model(ckpt, output, overwrite=True)
    assert ckpt.is_file()


def test_adapter_directory_holds_its_base_and_loads_offline(lora_checkpoint, tmp_path):
    ckpt, module = lora_checkpoint
    out = export_adapter(ckpt, tmp_path / "adapter", dtype="fp32")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(out / "base")
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(out / "base"), out).eval()
    ids = sample_ids(tokenizer)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, module.model(input_ids=ids).logits, atol=1e-4)
    assert (out / "adapter_model.safetensors").stat().st_size > 443


def test_adapter_of_a_chained_stage_equals_its_merged_export(base_dir, zh_tokenizer_dir, tmp_path):
    """Stage 2 after stage 1: ``base/`` is the base with stage 1 merged in; base + adapter = the merged export."""
    stage1, _ = trained_checkpoint(tmp_path / "stage1.ckpt", EmbeddingOnly(), pretrained=str(base_dir),
                                   tokenizer=str(zh_tokenizer_dir))
    stage2, _ = trained_checkpoint(tmp_path / "stage2.ckpt", LoRAWithEmbeddings(r=4, alpha=8, train_embeddings=False),
                                   init_from=str(stage1))
    stage1.unlink()  # stage 2 carries what stage 1 trained
    merged = AutoModelForCausalLM.from_pretrained(export_model(stage2, tmp_path / "merged", dtype="fp32")).eval()
    out = export_adapter(stage2, tmp_path / "adapter", dtype="fp32")
    base = AutoModelForCausalLM.from_pretrained(out / "base")
    stage1_embedding = torch.load(tmp_path / "stage2.ckpt", weights_only=True)["zhllama"]["stages"][0]["trained"]
    assert torch.equal(base.model.embed_tokens.weight, stage1_embedding["model.model.embed_tokens.weight"])
    adapted = PeftModel.from_pretrained(base, out).eval()
    ids = sample_ids(AutoTokenizer.from_pretrained(out))
    with torch.no_grad():
        assert torch.allclose(adapted(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5)


def test_adapter_refused_for_a_stage_without_lora(base_dir, zh_tokenizer_dir, tmp_path):
    ckpt, _ = trained_checkpoint(tmp_path / "stage1.ckpt", EmbeddingOnly(), pretrained=str(base_dir),
                                 tokenizer=str(zh_tokenizer_dir))
    with pytest.raises(UserError, match=r"trained EmbeddingOnly\(.*\), no LoRA, so there is no adapter.*--adapter"):
        export_adapter(ckpt, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_another_tokenizer_and_a_missing_base_are_refused(lora_checkpoint, zh_tokenizer_dir_with_pad, tmp_path):
    ckpt, _ = lora_checkpoint
    with pytest.raises(UserError, match=f"the tokenizer .*, not {zh_tokenizer_dir_with_pad} .*drop --tokenizer"):
        export_model(ckpt, tmp_path / "out", tokenizer_dir=str(zh_tokenizer_dir_with_pad))
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["zhllama"]["base"]["pretrained"] = str(tmp_path / "moved_base")
    torch.save(checkpoint, tmp_path / "nobase.ckpt")
    with pytest.raises(UserError, match=f"base model {tmp_path / 'moved_base'} is missing .*--base DIR"):
        export_model(tmp_path / "nobase.ckpt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_adapter_with_empty_partitioned_weights_is_refused(lora_checkpoint, tmp_path, monkeypatch):
    """ZeRO-3 leaves size-0 parameter shells on a rank; an adapter saved from them would hold nothing."""
    import lightning_modules.hf_export as hf_export

    restore = hf_export.restore_module

    def restore_partitioned(*args, **kwargs):
        module = restore(*args, **kwargs)
        for name, p in module.model.named_parameters():
            if "lora_" in name:
                p.data = torch.empty(0)
        return module

    monkeypatch.setattr(hf_export, "restore_module", restore_partitioned)
    with pytest.raises(UserError, match="refusing to write an adapter with 0 LoRA.*no usable trained weights"):
        export_adapter(lora_checkpoint[0], tmp_path / "adapter")
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_cannot_name_where_its_tokenizer_files_go(tmp_path) -> None:
    """The tokenizer record of a checkpoint is user input: a file name that is not a tokenizer file (``../x``)
    is refused before anything is written."""
    from lightning_modules.hf_export import _write_tokenizer

    with pytest.raises(UserError, match=r"names files a tokenizer does not have \(\.\./escaped\)"):
        _write_tokenizer({"tokenizer_config.json": b"{}", "../escaped": b"payload"}, tmp_path / "out")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "out").exists()
