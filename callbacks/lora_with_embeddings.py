"""Stage 2 and SFT of the seed recipe: LoRA on the projections, with ``embed_tokens`` and ``lm_head`` trained.

The model's own embedding and head parameters are marked trainable after peft has frozen the base, rather than
listed in peft's ``modules_to_save``, which would keep a frozen original *and* a trainable copy of each (for a
50k x 4096 vocabulary, 1.6 GB of duplicates in fp32).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peft import LoraConfig, get_peft_model

from lightning_modules.freeze_policy import FreezePolicy

if TYPE_CHECKING:
    from lightning_modules.causal_lm import CausalLMModule

LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRAWithEmbeddings(FreezePolicy):
    def __init__(
        self,
        r: int = 8,
        alpha: int = 32,
        dropout: float = 0.05,
        target_modules: list[str] = list(LLAMA_PROJECTIONS),
        train_embeddings: bool = True,
        train_lm_head: bool = True,
        new_rows_only: bool = False,
    ) -> None:
        """peft LoRA adapters plus full embedding/head training.

        Args:
            r: LoRA rank.
            alpha: LoRA alpha (scale alpha / r).
            dropout: dropout on the LoRA branch input.
            target_modules: module names that get adapters (LLaMA's seven projections by default).
            train_embeddings: train ``embed_tokens``.
            train_lm_head: train ``lm_head``.
            new_rows_only: keep the base vocabulary's rows of embedding and head bit-identical.
        """
        super().__init__()
        self.r, self.alpha, self.dropout = r, alpha, dropout
        self.target_modules = list(target_modules)
        self.train_embeddings, self.train_lm_head, self.new_rows_only = train_embeddings, train_lm_head, new_rows_only

    def init_args(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": self.target_modules,
            "train_embeddings": self.train_embeddings,
            "train_lm_head": self.train_lm_head,
            "new_rows_only": self.new_rows_only,
        }

    def apply(self, module: CausalLMModule) -> None:
        config = LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
        )
        module.model = get_peft_model(module.model, config)  # freezes every base parameter
        base = module.causal_lm
        if self.train_embeddings:
            base.get_input_embeddings().weight.requires_grad_(True)
        if self.train_lm_head:
            base.get_output_embeddings().weight.requires_grad_(True)
        if self.new_rows_only:
            module.freeze_vocab_rows()
