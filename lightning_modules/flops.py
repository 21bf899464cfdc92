"""Analytic training FLOPs per token and MFU, nanoGPT/PaLM style.

Lightning's peak-FLOP/s table does not know every accelerator (the H200 is missing), so the peak is an argument.
"""

from __future__ import annotations

from transformers import PretrainedConfig


def training_flops_per_token(config: PretrainedConfig, seq_len: int) -> float:
    """Model FLOPs of one trained token: 6 x parameters (forward + backward matmuls) plus attention scores,
    12 x layers x hidden x seq_len (PaLM appendix B). Counts the full model whatever is frozen, the usual MFU
    convention, so numbers compare across freeze policies and codebases."""
    d, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    attn = d * head_dim * (2 * heads + 2 * kv_heads)
    mlp = 3 * d * config.intermediate_size
    params = layers * (attn + mlp) + vocab * d  # the head is a matmul; embedding lookups are not
    return 6.0 * params + 12.0 * layers * d * seq_len


def mfu(tokens_per_second: float, flops_per_token: float, peak_flops_per_second: float) -> float:
    """Model FLOPs utilisation: achieved model FLOP/s over the device's peak (same precision as the run)."""
    return tokens_per_second * flops_per_token / peak_flops_per_second
