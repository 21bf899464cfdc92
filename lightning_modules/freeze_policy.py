"""What trains in a stage is decided by one ``FreezePolicy`` callback.

Lightning's ``BaseFinetuning`` freezes in ``on_fit_start`` (too late for DeepSpeed, which builds its optimizer
in ``strategy.setup``) and refuses DeepSpeed outright. A policy instead is asked by
``CausalLMModule.configure_model`` to ``apply`` itself right after the model exists, before the strategy wraps it
and before ``configure_optimizers``. Its constructor arguments are its identity: they are written into every
checkpoint, and resuming under a different policy fails instead of silently training the wrong parameters.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback

from tokenization.errors import UserError

if TYPE_CHECKING:
    from lightning_modules.causal_lm import CausalLMModule


class FreezePolicyMismatchError(UserError):
    """A checkpoint was trained under one freeze policy and is being resumed or loaded under another."""


class FreezePolicy(Callback):
    """Base class: subclasses set ``requires_grad`` (and may wrap ``module.model``) in :meth:`apply`."""

    @property
    def state_key(self) -> str:
        # One key for every policy, so a checkpoint of policy A meets policy B in `load_state_dict` and fails.
        return "FreezePolicy"

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments that define this policy (JSON/YAML-friendly)."""
        raise NotImplementedError

    def apply(self, module: CausalLMModule) -> None:
        """Freeze / wrap ``module.model`` in place; ``module.original_vocab_size`` tells old rows from new."""
        raise NotImplementedError

    def record(self) -> dict[str, Any]:
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": self.init_args()}

    def state_dict(self) -> dict[str, Any]:
        return self.record()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        check_same_policy(state_dict, self.record())


def describe(record: dict[str, Any] | None) -> str:
    if record is None:
        return "no freeze policy (every parameter trains)"
    args = ", ".join(f"{k}={v!r}" for k, v in record["init_args"].items())
    return f"{record['class_path'].rsplit('.', 1)[-1]}({args})"


def check_same_policy(saved: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
    """Raise ``FreezePolicyMismatchError`` naming both policies unless they are the same."""
    if saved != current:
        raise FreezePolicyMismatchError(
            f"the checkpoint was trained with {describe(saved)} but this run uses {describe(current)}; resume "
            "with the same freeze-policy callback and arguments as the run that wrote it, or start a new stage "
            "from the checkpoint with `model.init_from` instead of `--ckpt_path`"
        )


def policy_from_record(record: dict[str, Any]) -> FreezePolicy:
    """Rebuild the policy a checkpoint recorded (``{"class_path", "init_args"}``). A checkpoint is user input, so
    only zhllama's ``callbacks`` package or a module this process already imported is looked in: a class path
    never makes an arbitrary module run."""
    class_path = str(record["class_path"])
    module_name, _, class_name = class_path.rpartition(".")
    if not (module_name.startswith("callbacks.") or module_name in sys.modules):
        raise UserError(f"the checkpoint's freeze policy {class_path} is not one of zhllama's (callbacks.*); "
                        "import the module that defines it before restoring")
    try:
        cls = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, FreezePolicy)):
        raise UserError(f"the checkpoint's freeze policy {class_path} is not a FreezePolicy")
    return cls(**record["init_args"])
