"""Answer instructions with an exported model: the prompt built exactly as in SFT, Chinese-Alpaca's sampling.

The prompt is ``[BOS] + tokens(template(instruction))`` -- the source half of an SFT example (see
:mod:`datamodules.sft_examples`), so the model sees at inference what it was trained on. Sampling defaults
are Chinese-LLaMA-Alpaca's ``inference_hf.py``: temperature 0.2, top-k 40, top-p 0.9, repetition penalty 1.1,
400 new tokens; generation stops at the tokenizer's EOS. The model runs on the GPU in bf16 when there is one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedModel, TextStreamer

from datamodules.prompt_templates import PromptTemplate
from datamodules.sft_batching import pad_token_id
from datamodules.sft_examples import special_ids
from lightning_modules.model_source import load_model_and_tokenizer
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf, load_tokenizer

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
EXPORT_HINT = "pass the output directory of `zhllama export` (export again if it was cut short)"


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; the defaults are Chinese-LLaMA-Alpaca's ``inference_hf.py``."""

    temperature: float = 0.2
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_new_tokens: int = 400
    do_sample: bool = True

    def __post_init__(self) -> None:
        problems = {
            "--temperature": self.do_sample and not self.temperature > 0,
            "--top_k": self.top_k < 0,
            "--top_p": not 0 < self.top_p <= 1,
            "--repetition_penalty": not self.repetition_penalty > 0,
            "--max_new_tokens": self.max_new_tokens < 1,
        }
        bad = [f"{flag} {getattr(self, flag[2:])}" for flag, wrong in problems.items() if wrong]
        if bad:
            raise UserError(
                "; ".join(bad) + ": out of range (temperature and repetition_penalty > 0, top_k >= 0, "
                "0 < top_p <= 1, max_new_tokens >= 1)"
            )

    def generation_config(self, tokenizer) -> GenerationConfig:
        bos, eos = special_ids(tokenizer)
        settings = asdict(self)
        if not self.do_sample:  # greedy: the sampling knobs would only trigger warnings
            for key in ("temperature", "top_k", "top_p"):
                settings.pop(key)
        return GenerationConfig(**settings, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad_token_id(tokenizer))


def resolve_placement(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """(device, dtype name) for ``auto``: the GPU in bf16 (fp16 where bf16 is unsupported) if there is one, else
    the CPU in fp32. An explicit ``cuda`` device without a GPU is refused rather than failing inside torch."""
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    elif device.startswith("cuda") and not has_cuda:
        raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
    if dtype == "auto":
        dtype = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.startswith("cuda") else "fp32"
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: choose one of auto, {', '.join(DTYPES)}")
    return device, dtype


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of an exported model directory, each checked to open (a truncated one does not)."""
    index = path / WEIGHTS_INDEX
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"{index}: not a safetensors index (no weight_map); {EXPORT_HINT}") from None
        files = [path / name for name in names]
    elif (path / WEIGHTS).is_file():
        files = [path / WEIGHTS]
    else:
        raise UserError(f"{path}: no {WEIGHTS} (nor {WEIGHTS_INDEX}); {EXPORT_HINT}")
    for file in files:
        if not file.is_file():
            raise UserError(f"{file}: missing, though {WEIGHTS_INDEX} lists it; {EXPORT_HINT}")
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except SafetensorError as error:
            raise UserError(f"{file}: unreadable ({error}), truncated or corrupt; {EXPORT_HINT}") from None
    return files


def check_model_dir(path: Path) -> None:
    """Refuses, naming the missing or broken file, a directory ``load_model`` cannot use."""
    if not path.is_dir():
        raise UserError(f"{path}: no such model directory; {EXPORT_HINT}")
    if not (path / "config.json").is_file():
        adapter = (path / "adapter_config.json").is_file()
        what = "a PEFT adapter, not a full model (export without --adapter)" if adapter else "not a model directory"
        raise UserError(f"{path}: no config.json, {what}; {EXPORT_HINT}")
    if not (path / "tokenizer_config.json").is_file():
        raise UserError(f"{path}: no tokenizer_config.json, so the model's tokenizer is incomplete; {EXPORT_HINT}")
    weight_files(path)


def load_model(model_dir: str | os.PathLike, dtype: str = "auto", device: str = "auto"):
    """(model, tokenizer) from an exported directory or a ``.gguf`` file, offline, on
    ``resolve_placement(device, dtype)``."""
    path = Path(model_dir)
    if is_gguf(path):  # llama.cpp's file: the model dequantised, the tokenizer from the same file
        device, dtype = resolve_placement(device, dtype)
        model, tokenizer = load_model_and_tokenizer(path, DTYPES[dtype])
        return model.to(device).eval(), tokenizer
    check_model_dir(path)
    device, dtype = resolve_placement(device, dtype)
    tokenizer = load_tokenizer(path)
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        missing = "BOS" if tokenizer.bos_token_id is None else "EOS"
        raise UserError(f"{path / 'tokenizer_config.json'}: the tokenizer has no {missing} token; {EXPORT_HINT}")
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=DTYPES[dtype], local_files_only=True, use_safetensors=True
    ).to(device).eval()
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise UserError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model only {rows} embedding rows; "
            "export the model together with its tokenizer"
        )
    return model, tokenizer


def prompt_ids(tokenizer, template: PromptTemplate, instruction: str) -> list[int]:
    bos, _ = special_ids(tokenizer)
    return [bos, *tokenizer(template.format(instruction), add_special_tokens=False)["input_ids"]]


@torch.inference_mode()
def stream_answer(
    model: PreTrainedModel, tokenizer, template: PromptTemplate, instruction: str, sampling: Sampling
) -> str:
    """Prints the answer to stdout token by token as it is generated and returns it."""
    ids = torch.tensor([prompt_ids(tokenizer, template, instruction)], device=model.device)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        generation_config=sampling.generation_config(tokenizer),
        streamer=streamer,
    )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


@torch.inference_mode()
def answer_batch(
    model: PreTrainedModel, tokenizer, template: PromptTemplate, instructions: list[str], sampling: Sampling
) -> list[str]:
    """Answers several instructions at once (left-padded so every prompt ends where generation starts)."""
    encoded = [prompt_ids(tokenizer, template, text) for text in instructions]
    width = max(map(len, encoded))
    pad = pad_token_id(tokenizer)
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=model.device)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=model.device)
    out = model.generate(input_ids=ids, attention_mask=mask, generation_config=sampling.generation_config(tokenizer))
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]
