"""A DeepSpeed checkpoint directory read as one Lightning checkpoint: its client state (the zhllama record,
hyper-parameters, loop state) with ``state_dict`` the fp32 trained parameters consolidated from every rank's
ZeRO-2/3 partitions (``deepspeed.utils.zero_to_fp32``, as Lightning's ``convert_zero_checkpoint_to_fp32_state_dict``).

Lightning's DeepSpeed strategy saves ``<name>.ckpt/`` as a directory: ``latest`` names the tag folder holding
``mp_rank_00_model_states.pt`` and one ``*_optim_states.pt`` per rank. DeepSpeed unpickles them without
``weights_only``; every file is first loaded ``weights_only`` (allowing DeepSpeed's loss scaler, ZeRO stage and
fragment address), so a crafted pickle is refused before DeepSpeed reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lightning_modules.run_checkpoints import read_checkpoint
from tokenization.errors import UserError

MODEL_STATES = "mp_rank_00_model_states.pt"
#: Keys of the model states file that are DeepSpeed's own, not Lightning's checkpoint.
ENGINE_KEYS = frozenset({
    "module", "buffer_names", "optimizer", "param_shapes", "frozen_param_shapes", "shared_params",
    "frozen_param_fragments", "lr_scheduler", "data_sampler", "random_ltd", "sparse_tensor_module_names",
    "skipped_steps", "global_steps", "global_samples", "dp_world_size", "mp_world_size", "ds_config", "ds_version",
})
WRAPPER_PREFIX = "_forward_module."  # Lightning's module wrapper, when the engine saved through it


def is_deepspeed_checkpoint(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "latest").is_file()


def read_deepspeed_checkpoint(path: Path) -> dict[str, Any]:
    """The Lightning checkpoint saved as the DeepSpeed directory ``path``, trained parameters consolidated in fp32."""
    try:
        from deepspeed.runtime.fp16.loss_scaler import LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError as error:
        raise UserError(f"{path} is a DeepSpeed checkpoint directory; reading it needs the deepspeed extra "
                        "(pip install -e '.[deepspeed]')") from error
    folder = path / (path / "latest").read_text(encoding="utf-8").strip()
    files = sorted(folder.glob("*.pt"))
    if not (folder / MODEL_STATES).is_file():
        raise UserError(f"{path}: incomplete DeepSpeed checkpoint (no {folder.name}/{MODEL_STATES}); use an earlier "
                        "checkpoint of the run")
    with torch.serialization.safe_globals([LossScaler, ZeroStageEnum, fragment_address]):
        client = read_checkpoint(folder / MODEL_STATES)
        for file in files:
            read_checkpoint(file, mmap=True)
    state = get_fp32_state_dict_from_zero_checkpoint(str(path), exclude_frozen_parameters=True)
    checkpoint = {k: v for k, v in client.items() if k not in ENGINE_KEYS}
    checkpoint["state_dict"] = {k.removeprefix(WRAPPER_PREFIX): v for k, v in state.items()}
    return checkpoint
