"""Cross-entropy of ``hidden @ weight.T`` that never holds the full ``[tokens, vocab]`` logits.

With a ~50k vocabulary the output head dominates both memory and arithmetic of a small model: the usual path keeps
fp32 logits, their log-softmax and their gradient (3 x tokens x vocab floats). Here the loss is computed a chunk of
tokens at a time, and since the loss is the graph's scalar end, each chunk's gradients (for the hidden states and
the head weight) are computed right away in the forward pass and only scaled in backward: no recomputation. The
memory it adds is the fp32 ``[vocab, d]`` weight gradient and the ``[tokens, d]`` hidden gradient, held until
backward, plus one chunk's logits and weight-gradient product while it runs (figures at 7B in docs/training.md).
``weight_grad_from_row`` skips the head's weight gradient for rows that are frozen (``new_rows_only``), which
cuts the largest matmul of a step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tokenization.constants import IGNORE_INDEX


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        hidden: Tensor,
        weight: Tensor,
        targets: Tensor,
        chunk_size: int,
        weight_grad_from_row: int,
    ) -> Tensor:
        need_hidden_grad, need_weight_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        device = hidden.device.type
        # Autocast is applied once here (not per chunk): matmuls run in the autocast dtype, softmax in fp32.
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        with torch.autocast(device, enabled=False):
            h_all, w = hidden.to(dtype), weight.to(dtype)
            valid = targets != IGNORE_INDEX
            scale = 1.0 / valid.sum().clamp(min=1).to(torch.float32)
            loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad_hidden = torch.empty_like(hidden) if need_hidden_grad else None
            grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight_grad else None
            # One logits buffer reused by every chunk: big fresh allocations cost page faults on CPU.
            buffer = torch.empty(min(chunk_size, h_all.shape[0]), w.shape[0], dtype=dtype, device=hidden.device)
            for start in range(0, h_all.shape[0], chunk_size):
                end = start + chunk_size
                loss += _chunk_loss(
                    h_all[start:end],
                    w,
                    targets[start:end],
                    valid[start:end],
                    buffer,
                    grad_hidden[start:end] if need_hidden_grad else None,
                    grad_weight[weight_grad_from_row:] if need_weight_grad else None,
                    weight_grad_from_row,
                )
        ctx.save_for_backward(
            grad_hidden if need_hidden_grad else None,
            grad_weight.to(weight.dtype) if need_weight_grad else None,
        )
        ctx.scale = scale
        return loss * scale

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors  # used once: scaled in place, no second [vocab, d] tensor
        factor = grad_output * ctx.scale
        return (
            grad_hidden.mul_(factor.to(grad_hidden.dtype)) if grad_hidden is not None else None,
            grad_weight.mul_(factor.to(grad_weight.dtype)) if grad_weight is not None else None,
            None,
            None,
            None,
        )


def _chunk_loss(
    h: Tensor,
    w: Tensor,
    t: Tensor,
    v: Tensor,
    buffer: Tensor,
    grad_hidden: Tensor | None,
    grad_weight_rows: Tensor | None,
    from_row: int,
) -> Tensor:
    """Summed loss of one chunk of tokens; adds its gradients into ``grad_hidden`` (the chunk's rows) and
    ``grad_weight_rows`` (the head's rows from ``from_row``). Its temporaries die on return, before the next
    chunk allocates its own."""
    dtype, rows = w.dtype, h.shape[0]
    logits = torch.mm(h, w.T, out=buffer[:rows])
    logits = logits if logits.dtype == torch.float32 else logits.float()
    safe_t = t.masked_fill(~v, 0)
    target_logit = logits.gather(1, safe_t[:, None]).squeeze(1)
    row_max = logits.amax(dim=1)
    probs = logits.sub_(row_max[:, None]).exp_()  # in place: logits -> unnormalised softmax
    row_sum = probs.sum(dim=1)
    loss = ((row_max + row_sum.log() - target_logit) * v).sum()
    if grad_hidden is None and grad_weight_rows is None:
        return loss
    # d loss / d logits = (softmax - onehot) on valid rows, 0 on ignored rows; times 1/n_valid in backward.
    probs.div_(row_sum[:, None])
    probs.scatter_add_(1, safe_t[:, None], torch.full((rows, 1), -1.0, device=probs.device))
    # The 1/n_valid of the mean is applied in backward, together with the loss scale: applied here, p/n would
    # flush to zero in fp16 before the GradScaler's factor could protect it.
    grad_logits = probs.mul_(v.to(torch.float32)[:, None]).to(dtype)
    del logits, probs  # the fp32 softmax goes before the gradient matmuls allocate
    if grad_hidden is not None:
        if grad_hidden.dtype == dtype:
            torch.mm(grad_logits, w, out=grad_hidden)
        else:
            grad_hidden.copy_(grad_logits @ w)
    if grad_weight_rows is not None:
        if dtype == torch.float32:
            torch.addmm(grad_weight_rows, grad_logits[:, from_row:].T, h, out=grad_weight_rows)
        else:
            grad_weight_rows.add_(grad_logits[:, from_row:].T @ h)
    return loss


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    chunk_size: int = 1024,
    weight_grad_from_row: int = 0,
) -> Tensor:
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets`` (``-100`` ignored), computed ``chunk_size``
    tokens at a time. ``hidden``: [..., d]; ``targets``: [...]; ``weight``: [vocab, d]. Rows of ``weight`` below
    ``weight_grad_from_row`` get a zero gradient (they must be frozen). Returns a float32 scalar."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not torch.is_grad_enabled():  # eval: needs_input_grad would still report the head's requires_grad
        hidden, weight = hidden.detach(), weight.detach()
    hidden, targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    valid = targets != IGNORE_INDEX
    if not bool(valid.all()):
        # SFT masks prompt and padding: drop those rows before the head's matmuls rather than weigh them by 0.
        hidden, targets = hidden[valid], targets[valid]
    return _LinearCrossEntropy.apply(hidden, weight, targets, chunk_size, weight_grad_from_row)
