"""AdamW's decoupled weight decay of the new vocabulary rows only (``new_rows_only``), applied by hand where the
optimizer keeps the weights it steps: the parameter under one process, DDP and FSDP2 (this rank's block of rows),
the fp32 master copy under DeepSpeed (this rank's slice of it), which the engine's step copies back over the
parameter. Writing the parameter there would be undone by that copy."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_modules.fsdp2_sharding import local_rows


@torch.no_grad()
def decay_new_rows(param: nn.Parameter, first_row: int, lr: float, weight_decay: float) -> None:
    """Scale rows ``[first_row:]`` of ``param`` by ``1 - lr × weight_decay`` where the optimizer steps them."""
    factor = 1.0 - lr * weight_decay
    if hasattr(param, "ds_id"):  # ZeRO-3: this rank's partition of the flattened parameter, in fp32
        from deepspeed.utils import safe_get_local_fp32_param, safe_set_local_fp32_param

        partition = safe_get_local_fp32_param(param)
        start = torch.distributed.get_rank(param.ds_process_group) * partition.numel()
        partition.view(-1)[max(first_row * math.prod(param.ds_shape[1:]) - start, 0):].mul_(factor)
        safe_set_local_fp32_param(param, partition)  # a no-op copy unless the optimizer is offloaded
    elif hasattr(param, "_hp_mapping"):  # ZeRO-1/2: a fragment of the flattened parameter, maybe none
        mapping = param._hp_mapping
        if mapping is None:
            return
        skip = max(first_row * param[0].numel() - mapping.lp_fragment_address.start, 0)
        if skip < mapping.lp_fragment_address.numel:
            mapping.hp_fragment.view(-1)[skip:].mul_(factor)
    else:
        rows, first = local_rows(param.data)  # under FSDP2 this rank's block of rows
        rows[max(first_row - first, 0):].mul_(factor)
