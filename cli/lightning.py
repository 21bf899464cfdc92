"""``zhllama fit|validate|test --config stage.yaml``: LightningCLI over ``CausalLMModule`` and any datamodule.

The data's tokenizer is the model's tokenizer (the model grows its vocabulary to it) and the data's sequence
length is the model's block size, so each is written once in a config. The resolved config is saved beside the
logs and overwritten on resume into the same directory.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningCLI

from lightning_modules.causal_lm import CausalLMModule


def sequence_length(data: LightningDataModule) -> int | None:
    """Block size of a pretraining datamodule or maximum length of an SFT one."""
    for name in ("block_size", "max_seq_length"):
        value = getattr(data, name, None)
        if value is not None:
            return int(value)
    return None


class ZhLlamaCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.init_args.tokenizer", "model.tokenizer")
        parser.link_arguments("data", "model.block_size", compute_fn=sequence_length, apply_on="instantiate")


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        # `zhllama fit ...` passes its own argv on, which LightningCLI would flag as "args and sys.argv both given"
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        run(argv)
    return 0


def run(argv: Sequence[str] | None) -> ZhLlamaCLI:
    return ZhLlamaCLI(
        CausalLMModule,
        LightningDataModule,
        subclass_mode_data=True,
        args=list(argv) if argv is not None else None,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
