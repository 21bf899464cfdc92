"""Generating from a model whose parameters are sharded across ranks (DeepSpeed ZeRO-3, FSDP2): each forward
gathers parameters from every rank, so every rank must generate, in step; ``synced_gpus`` keeps a rank that is
done joining the gathers until all are. FSDP2's root unit (embedding, final norm, head) is gathered only by the
module's own forward, which generation does not call: it is gathered for the whole generation instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor


def parameters_sharded(module: nn.Module) -> bool:
    """Whether ``module``'s parameters are partitioned across ranks (ZeRO-3's ``ds_id``, FSDP2's DTensors)."""
    return any(hasattr(p, "ds_id") or isinstance(p, DTensor) for p in module.parameters())


@contextmanager
def root_gathered(module: nn.Module) -> Iterator[None]:
    """``module``'s own FSDP2 parameters gathered (a collective: every rank enters), resharded on exit."""
    if not isinstance(module, FSDPModule):
        yield
        return
    module.unshard()
    try:
        yield
    finally:
        module.reshard()
