"""Model FLOPs of a training step of a LLaMA-family model, counted analytically from its config.

Counts the matmuls of forward and backward for every parameter whatever is frozen (the usual MFU convention, so
figures compare across freeze policies) and PaLM's attention term (appendix B). Lightning's peak-FLOP/s table
does not know every accelerator, so the peak a figure is divided by is the user's ``peak_flops_per_device``.
"""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PretrainedConfig


def matmul_parameters(config: PretrainedConfig) -> int:
    """Parameters that take part in a matmul per token: every projection and the output head (an embedding lookup
    is no matmul)."""
    d, heads = config.hidden_size, config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    attention = d * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * d * config.intermediate_size
    return config.num_hidden_layers * (attention + mlp) + config.vocab_size * d


def training_flops(config: PretrainedConfig, sequence_lengths: Iterable[int]) -> float:
    """FLOPs of forward + backward over sequences of these lengths (padding excluded): 6 x matmul parameters per
    token, plus 12 x layers x attention width x length per token for the attention scores and their use."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    per_token = 6.0 * matmul_parameters(config)
    attention = 12.0 * config.num_hidden_layers * heads * head_dim
    return sum(per_token * n + attention * n * n for n in sequence_lengths)
