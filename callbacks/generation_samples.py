"""Greedy continuations of fixed Chinese prompts written to TensorBoard at every validation, so a run shows the
model moving from noise to Chinese. Rank 0 generates and writes; under ZeRO-3 and FSDP2, whose forwards gather
parameters from every rank, all ranks generate."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn

from datamodules.prompt_templates import get_template
from datamodules.sft_batching import pad_token_id
from lightning_modules.generation import prompt_ids
from lightning_modules.sharded_generation import parameters_sharded, root_gathered

DEFAULT_PROMPTS = (
    "中国的首都是",
    "三国演义是一部",
    "人工智能是指",
    "今天天气很好，我们",
    "请介绍一下长城。",
)


class GenerationSamples(pl.Callback):
    def __init__(
        self, prompts: list[str] = list(DEFAULT_PROMPTS), max_new_tokens: int = 32, template: str | None = None
    ) -> None:
        """Args:
        prompts: the fixed prompts (the same at every validation, so samples compare across steps).
        max_new_tokens: tokens generated per prompt (greedy).
        template: for SFT, the prompt template the data uses (``alpaca_v1``, ``llama2_zh`` or a template
            string), so each prompt is asked as an instruction exactly as in training; unset: raw continuation.
        """
        super().__init__()
        self.prompts = list(prompts)
        self.max_new_tokens = max_new_tokens
        self.template = get_template(template) if template is not None else None
        self.samples: list[tuple[int, str, str]] = []  # (step, prompt, continuation), newest last

    @torch.no_grad()
    def generate(self, pl_module: pl.LightningModule, synced: bool = False) -> list[str]:
        """The continuations; ``synced``: every rank of a sharded model calls this, in step."""
        tokenizer, model = pl_module.tokenizer, pl_module.causal_lm
        was_training = model.training
        model.eval()
        completions = []
        with root_gathered(pl_module):
            for prompt in self.prompts:
                if self.template is not None:
                    input_ids = torch.tensor([prompt_ids(tokenizer, self.template, prompt)], device=pl_module.device)
                else:
                    input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(pl_module.device)
                output = model.generate(
                    input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=pad_token_id(tokenizer),
                    synced_gpus=synced,
                )
                completions.append(tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True))
        model.train(was_training)
        return completions

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "tokenizer", None) is None:
            rank_zero_warn("GenerationSamples: the model has no tokenizer (`model.tokenizer`); no samples written")
            return
        sharded = trainer.world_size > 1 and parameters_sharded(pl_module)
        if not (trainer.is_global_zero or sharded):
            return
        completions = self.generate(pl_module, synced=sharded)
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        self.samples += [(step, p, c) for p, c in zip(self.prompts, completions)]
        table = "\n".join(f"| {p} | {c.replace('|', '&#124;').replace(chr(10), ' ')} |" for p, c in zip(self.prompts, completions))
        text = "| prompt | continuation |\n|---|---|\n" + table
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("samples/generations", text, global_step=step)
