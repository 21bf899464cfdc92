"""Export round trips on a tiny LLaMA base (an HF directory) trained one "step" with LoRA + embeddings."""

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from callbacks.embedding_only import EmbeddingOnly
from callbacks.lora_with_embeddings import LoRAWithEmbeddings
from lightning_modules.causal_lm import CausalLMModule
from lightning_modules.hf_export import ExportError, export_adapter, export_model
from lightning_modules.model_loading import resize_vocabulary, tiny_llama_config

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
    assert not list(tmp_path.glob(".hf.partial"))


def test_bf16_export_and_refusal_to_overwrite(lora_checkpoint, tmp_path):
    ckpt, _ = lora_checkpoint
    out = export_model(ckpt, tmp_path / "hf16")
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16
    with pytest.raises(ExportError, match="not empty.*--overwrite"):
        export_model(ckpt, out)
    export_model(ckpt, out, dtype="fp32", overwrite=True)
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.float32


def test_adapter_export_loads_onto_the_resized_base(lora_checkpoint, base_dir, tmp_path):
    ckpt, module = lora_checkpoint
    out = export_adapter(ckpt, tmp_path / "adapter")
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    resize_vocabulary(base, len(tokenizer))
    model = PeftModel.from_pretrained(base, out).eval()
    ids = sample_ids(tokenizer)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, module.model(input_ids=ids).logits, atol=1e-4)
    assert (out / "adapter_model.safetensors").stat().st_size > 443


def test_adapter_refused_without_lora_weights(base_dir, zh_tokenizer_dir, tmp_path):
    ckpt, _ = trained_checkpoint(tmp_path / "stage1.ckpt", EmbeddingOnly(), pretrained=str(base_dir), tokenizer=str(zh_tokenizer_dir))
    with pytest.raises(ExportError, match="no LoRA adapter.*drop --adapter"):
        export_adapter(ckpt, tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_vocabulary_mismatch_and_missing_base_are_refused(lora_checkpoint, tmp_path):
    ckpt, _ = lora_checkpoint
    other = tmp_path / "other_tokenizer"
    checkpoint = torch.load(ckpt, weights_only=False)
    AutoTokenizer.from_pretrained(checkpoint["hyper_parameters"]["tokenizer"]).save_pretrained(other)
    checkpoint["hyper_parameters"]["tokenizer"] = str(other)
    embed = next(k for k in checkpoint["state_dict"] if k.endswith("embed_tokens.weight"))
    checkpoint["state_dict"][embed] = checkpoint["state_dict"][embed][:-5]
    torch.save(checkpoint, tmp_path / "mismatch.ckpt")
    with pytest.raises(ExportError, match=r"vocabulary mismatch: .*embed_tokens.weight has \d+ rows"):
        export_model(tmp_path / "mismatch.ckpt", tmp_path / "out")
    checkpoint["hyper_parameters"]["pretrained"] = str(tmp_path / "moved_base")
    torch.save(checkpoint, tmp_path / "nobase.ckpt")
    with pytest.raises(ExportError, match="base model `pretrained: .*moved_base` is missing"):
        export_model(tmp_path / "nobase.ckpt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_adapter_with_empty_partitioned_weights_is_refused(lora_checkpoint, tmp_path, monkeypatch):
    """ZeRO-3 leaves size-0 parameter shells on a rank: the anchor saved those as its 443-byte adapter."""
    import lightning_modules.hf_export as hf_export

    restore = hf_export.restore_module

    def restore_partitioned(source):
        module = restore(source)
        for name, p in module.model.named_parameters():
            if "lora_" in name:
                p.data = torch.empty(0)
        return module

    monkeypatch.setattr(hf_export, "restore_module", restore_partitioned)
    with pytest.raises(ExportError, match="refusing to write an adapter with 0 LoRA.*443-byte"):
        export_adapter(lora_checkpoint[0], tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists() and not (tmp_path / ".adapter.partial").exists()
