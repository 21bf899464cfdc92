"""A DeepSpeed checkpoint directory read as one Lightning checkpoint: its client state (the zhllama record,
hyper-parameters, loop state) with ``state_dict`` the fp32 trained parameters consolidated from every rank's
ZeRO-2/3 partitions (``deepspeed.utils.zero_to_fp32``, as Lightning's ``convert_zero_checkpoint_to_fp32_state_dict``).

Lightning's DeepSpeed strategy saves ``<name>.ckpt/`` as a directory (its layout: ``run_checkpoints``). DeepSpeed
unpickles its files without ``weights_only``; every file is first loaded ``weights_only`` (allowing DeepSpeed's
loss scaler, ZeRO stage and fragment address), so a crafted pickle is refused before DeepSpeed reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_modules.run_checkpoints import (
    deepspeed_classes_allowed, deepspeed_model_states, is_deepspeed_checkpoint, read_checkpoint, read_client_state,
)
from tokenization.errors import UserError

#: Keys of the model states file that are DeepSpeed's own, not Lightning's checkpoint.
ENGINE_KEYS = frozenset({
    "module", "buffer_names", "optimizer", "param_shapes", "frozen_param_shapes", "shared_params",
    "frozen_param_fragments", "lr_scheduler", "data_sampler", "random_ltd", "sparse_tensor_module_names",
    "skipped_steps", "global_steps", "global_samples", "dp_world_size", "mp_world_size", "ds_config", "ds_version",
})
WRAPPER_PREFIX = "_forward_module."  # Lightning's module wrapper, when the engine saved through it


def read_deepspeed_checkpoint(path: Path) -> dict[str, Any]:
    """The Lightning checkpoint saved as the DeepSpeed directory ``path``, trained parameters consolidated in fp32
    from every rank's ZeRO-1/2/3 partitions."""
    if not is_deepspeed_checkpoint(path):
        raise UserError(f"{path}: not a DeepSpeed checkpoint directory (no `latest` file in it)")
    client = read_client_state(path)
    with deepspeed_classes_allowed():
        for file in sorted(deepspeed_model_states(path).parent.glob("*.pt")):
            read_checkpoint(file, mmap=True)
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = get_fp32_state_dict_from_zero_checkpoint(str(path), exclude_frozen_parameters=True)
    checkpoint = {k: v for k, v in client.items() if k not in ENGINE_KEYS}
    checkpoint["state_dict"] = {k.removeprefix(WRAPPER_PREFIX): v for k, v in state.items()}
    return checkpoint
