"""FSDP2 (``torch.distributed.fsdp.fully_shard``) of a ``CausalLMModule`` under Lightning's ``ModelParallelStrategy``.

Each decoder layer is one unit and the LightningModule itself is the root unit, holding the embedding, the final
norm and the head: the chunked loss reads the head's weight outside the model's forward, and only the root's
forward (the module's own) gathers it. FSDP2 shards each parameter along dim 0 (frozen and trained ones may share
a unit), so a vocabulary row lives on one rank: ``local_rows`` is a rank's block of rows and where it starts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, Shard

from tokenization.errors import UserError

DATA_PARALLEL = "data_parallel"
TENSOR_PARALLEL = "tensor_parallel"


def mixed_precision(precision: str) -> MixedPrecisionPolicy:
    """``bf16-mixed``: parameters gathered and used in bf16, gradients reduced in fp32 (the fp32 shards stay the
    optimizer's); any other precision: the parameters as they are."""
    if precision == "bf16-mixed":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's decoder layers: the modules of the classes its ``_no_split_modules`` names."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise UserError(f"FSDP2: {type(model).__name__} names no decoder layer class (_no_split_modules) to shard "
                        "by; train it under DDP or DeepSpeed instead")
    return layers


def shard_fully(root: nn.Module, layers: list[nn.Module], mesh: DeviceMesh, precision: str) -> None:
    """``fully_shard`` each of ``layers``, then ``root``, across the mesh's data-parallel ranks."""
    if mesh[TENSOR_PARALLEL].size() > 1:
        raise UserError(f"trainer.strategy: tensor_parallel_size {mesh[TENSOR_PARALLEL].size()}: zhllama shards with "
                        "FSDP2 only; set tensor_parallel_size 1 and data_parallel_size to devices × nodes "
                        "(configs/strategies/fsdp2.yaml)")
    data_parallel, policy = mesh[DATA_PARALLEL], mixed_precision(precision)
    for layer in layers:
        fully_shard(layer, mesh=data_parallel, mp_policy=policy)
    fully_shard(root, mesh=data_parallel, mp_policy=policy)


def local_rows(tensor: Tensor) -> tuple[Tensor, int]:
    """The rows of ``tensor`` this rank holds, as a view to read or write in place, and the index of the first:
    a plain tensor whole from row 0; a DTensor sharded along dim 0 in ``torch.chunk``'s blocks (FSDP2's split)."""
    if not isinstance(tensor, DTensor):
        return tensor, 0
    if tensor.placements != (Shard(0),):
        raise ValueError(f"rows of a DTensor placed {tensor.placements}: only (Shard(0),) is split by rows")
    rows_per_rank = -(-tensor.shape[0] // tensor.device_mesh.size())
    return tensor.to_local(), rows_per_rank * tensor.device_mesh.get_local_rank()
