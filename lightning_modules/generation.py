"""Answer instructions with an exported model: the prompt built exactly as in SFT, the anchor's sampling.

The prompt is ``[BOS] + tokens(template(instruction))`` -- the source half of an SFT example (see
:mod:`datamodules.sft_examples`), so the model sees at inference what it was trained on. Sampling defaults
are Chinese-LLaMA-Alpaca's ``inference_hf.py``: temperature 0.2, top-k 40, top-p 0.9, repetition penalty 1.1,
400 new tokens; generation stops at the tokenizer's EOS.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedModel, TextStreamer

from datamodules.prompt_templates import PromptTemplate
from datamodules.sft_batching import pad_token_id
from datamodules.sft_examples import special_ids

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; the defaults are the anchor's."""

    temperature: float = 0.2
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    max_new_tokens: int = 400
    do_sample: bool = True

    def generation_config(self, tokenizer) -> GenerationConfig:
        bos, eos = special_ids(tokenizer)
        settings = asdict(self)
        if not self.do_sample:  # greedy: the sampling knobs would only trigger warnings
            for key in ("temperature", "top_k", "top_p"):
                settings.pop(key)
        return GenerationConfig(**settings, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad_token_id(tokenizer))


def load_model(model_dir: str | os.PathLike, dtype: str = "fp32", device: str = "cpu"):
    """(model, tokenizer) from an exported directory, offline."""
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.json); pass the output of `zhllama export`")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype], local_files_only=True).to(device).eval()
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        raise ValueError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model only "
            f"{model.get_input_embeddings().weight.shape[0]} embedding rows; export the model together with its tokenizer"
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
