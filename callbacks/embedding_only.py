"""Stage 1 of the seed recipe: only the (new) token embeddings learn; the transformer stays LLaMA's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_modules.freeze_policy import FreezePolicy

if TYPE_CHECKING:
    from lightning_modules.causal_lm import CausalLMModule


class EmbeddingOnly(FreezePolicy):
    def __init__(self, new_rows_only: bool = False, include_lm_head: bool = False) -> None:
        """Train ``embed_tokens`` only.

        Args:
            new_rows_only: keep the base model's original vocabulary rows bit-identical (gradient masked and
                weight decay skipped), so what the model knew about its own tokens is kept exactly.
            include_lm_head: train ``lm_head`` too (the same row rule applies to it).
        """
        super().__init__()
        self.new_rows_only = new_rows_only
        self.include_lm_head = include_lm_head

    def init_args(self) -> dict[str, Any]:
        return {"new_rows_only": self.new_rows_only, "include_lm_head": self.include_lm_head}

    def apply(self, module: CausalLMModule) -> None:
        model = module.model
        model.requires_grad_(False)
        model.get_input_embeddings().weight.requires_grad_(True)
        if self.include_lm_head:
            model.get_output_embeddings().weight.requires_grad_(True)
        if self.new_rows_only:
            module.freeze_vocab_rows()
