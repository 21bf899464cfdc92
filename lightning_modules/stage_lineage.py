"""Where a stage starts: the pinned base model plus every earlier stage's trained tensors, carried in each checkpoint.

A stage checkpoint stores only what the stage trained. To stand alone it also carries its *lineage*: the base
(an absolute path -- a Hugging Face directory or a ``.gguf`` file -- with its fingerprint, or a ``model_config``
with its ``init_seed``) and, oldest first, each
earlier stage's freeze policy and trained tensors (LoRA factors unmerged, so a LoRA stage costs its factors, not
the 13 GB of merged 7B projections). Replaying the lineage -- base, then per stage: resize the vocabulary, apply
its policy, load its tensors, merge -- rebuilds exactly the model the stage started from, whatever happened to
the earlier stages' files since. How the rows beyond the base's start (``new_token_init``; for ``subtoken_mean``
the base ids each new token splits into) is recorded by the stage that first grows the vocabulary, so every
rebuild gives the same rows without reading a tokenizer again. A tensor a later stage trains whole (an embedding,
a head) supersedes every earlier copy, which is dropped, so each tensor is stored once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import PreTrainedModel

from lightning_modules.base_fingerprint import (
    model_difference,
    model_fingerprint,
    tokenizer_difference,
    tokenizer_fingerprint,
)
from lightning_modules.model_loading import build_causal_lm, resize_vocabulary
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf, load_tokenizer, tokenizer_files
from tokenization.subtoken_ids import subtoken_ids

#: How a new embedding/head row starts: the mean of the old rows, or the mean of the rows of the base tokens
#: the new token splits into (Fast Vocabulary Transfer).
NewTokenInit = Literal["mean", "subtoken_mean"]


def plain_name(key: str) -> str:
    """A module state-dict key as the parameter's name in the plain ``*ForCausalLM`` (peft prefix removed)."""
    return key.removeprefix("model.").removeprefix("base_model.model.")


def whole_tensors(keys: Any) -> set[str]:
    """Plain names of the keys that hold a whole parameter (not a LoRA factor)."""
    return {plain_name(k) for k in keys if "lora_" not in k}


def is_pretrained_model(path: Path) -> bool:
    """A model ``build_causal_lm`` loads from a path: a Hugging Face directory or a ``.gguf`` file."""
    return is_gguf(path) or (path / "config.json").is_file()


@dataclass(frozen=True)
class Base:
    """The model a lineage starts from: an absolute HF directory or ``.gguf`` file plus its fingerprint, or a
    random init."""

    pretrained: str | None = None
    model_config: dict[str, Any] | None = None
    init_seed: int = 0
    fingerprint: dict[str, Any] | None = None

    @classmethod
    def of(cls, pretrained: str | None, model_config: dict[str, Any] | None, init_seed: int) -> Base:
        if (pretrained is None) == (model_config is None):
            raise UserError("give exactly one of `model.pretrained` (a local Hugging Face model directory or .gguf "
                            "file), `model.model_config` or `model.init_from`")
        if model_config is not None:
            return cls(model_config=dict(model_config), init_seed=init_seed)
        path = Path(pretrained).expanduser().resolve()
        if not is_pretrained_model(path):
            raise UserError(f"model.pretrained {path}: neither a Hugging Face model directory (no config.json) nor "
                            "a .gguf file")
        return cls(pretrained=str(path), init_seed=init_seed, fingerprint=model_fingerprint(path))

    def identity(self) -> tuple[Any, ...]:
        """What the base is, wherever it lies."""
        return self.model_config, self.init_seed, self.fingerprint

    def load(self, base_dir: str | None = None) -> PreTrainedModel:
        """The base model, from where it was recorded or from ``base_dir`` (a base that moved), refused unless
        its fingerprint is the recorded one."""
        if self.model_config is not None:
            if base_dir is not None:
                raise UserError(f"--base {base_dir}: this checkpoint's base is a random init (model_config), not a "
                                "model; drop --base")
            return build_causal_lm(None, self.model_config, self.init_seed)
        path = Path(base_dir).expanduser().resolve() if base_dir is not None else Path(self.pretrained)
        if not is_pretrained_model(path):
            raise UserError(f"base model {path} is missing (neither a directory with config.json nor a .gguf file); "
                            "put it back there, or name where it is now (zhllama export --base DIR_OR_GGUF)")
        difference = model_difference(self.fingerprint, model_fingerprint(path))
        if difference:
            raise UserError(f"base model {path} is not the one this checkpoint was built on ({difference}); "
                            f"use the original base (recorded at {self.pretrained})")
        return build_causal_lm(str(path), None, self.init_seed)

    def tokenizer(self) -> dict[str, Any] | None:
        """The base's own tokenizer (a directory's files, or a ``.gguf``'s tokenizer as files), when it has one."""
        files = tokenizer_files(Path(self.pretrained)) if self.pretrained else {}
        return {"path": self.pretrained, "files": files} if "tokenizer_config.json" in files else None


@dataclass
class StageLineage:
    """The start of a stage. ``vocab_size`` is the rows the stage trains with (None: the base's);
    ``original_vocab_size`` the rows ``new_rows_only`` keeps, inherited from the earlier stages (None: the base's).
    ``new_token_init`` is how the rows the lineage adds to the base's start (None until a stage grows them, and in
    records older than the option: the mean); ``subtoken_ids`` holds, for ``subtoken_mean``, each new row's base ids."""

    base: Base
    stages: list[dict[str, Any]] = field(default_factory=list)
    tokenizer: dict[str, Any] | None = None
    vocab_size: int | None = None
    original_vocab_size: int | None = None
    new_token_init: NewTokenInit | None = None
    subtoken_ids: list[list[int]] | None = None

    # ----- record <-> lineage -------------------------------------------------------------------------------
    def to_record(self, superseded: set[str] = frozenset()) -> dict[str, Any]:
        """The checkpoint entries of this lineage; tensors whose plain name is in ``superseded`` (trained whole
        by the stage being saved) are left out."""
        return {
            "base": {"pretrained": self.base.pretrained, "model_config": self.base.model_config,
                     "init_seed": self.base.init_seed, "fingerprint": self.base.fingerprint},
            "stages": _prune(self.stages, set(superseded)),
            "tokenizer": self.tokenizer,
            "new_token_init": self.new_token_init,
            "subtoken_ids": self.subtoken_ids,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StageLineage:
        """The lineage a checkpoint's stage was built on (its own vocabulary and original rows included)."""
        return cls(Base(**record["base"]), list(record["stages"]), record["tokenizer"],
                   record["vocab_size"], record["original_vocab_size"], *_new_token_init(record))

    @classmethod
    def after(cls, record: dict[str, Any], trained: dict[str, torch.Tensor]) -> StageLineage:
        """The lineage of a new stage that starts where the checkpointed stage (``record``, ``trained``) ended."""
        stage = {"freeze_policy": record["freeze_policy"], "original_vocab_size": record["original_vocab_size"],
                 "vocab_size": record["vocab_size"], "trained": dict(trained)}
        stages = _prune([*record["stages"], stage], set())
        return cls(Base(**record["base"]), stages, record["tokenizer"], record["vocab_size"],
                   record["original_vocab_size"], *_new_token_init(record))

    def same_start(self, other: StageLineage, superseded: set[str]) -> bool:
        """Whether both lineages rebuild the same start model for a stage that trains ``superseded`` whole."""
        mine, theirs = _prune(self.stages, set(superseded)), _prune(other.stages, set(superseded))
        return (self.base.identity() == other.base.identity() and len(mine) == len(theirs)
                and (self.new_token_init, self.subtoken_ids) == (other.new_token_init, other.subtoken_ids) and all(
            a["freeze_policy"] == b["freeze_policy"] and a["vocab_size"] == b["vocab_size"]
            and a["original_vocab_size"] == b["original_vocab_size"] and a["trained"].keys() == b["trained"].keys()
            and all(torch.equal(a["trained"][k], b["trained"][k]) for k in a["trained"])
            for a, b in zip(mine, theirs)))

    # ----- tokenizer ----------------------------------------------------------------------------------------
    def with_tokenizer(self, tokenizer_dir: str | None, vocab_size: int | None, source: str) -> StageLineage:
        """This lineage continued by a stage with the tokenizer ``tokenizer_dir`` (None: the inherited one, or
        the base directory's); after earlier stages only the tokenizer they trained with is accepted."""
        if tokenizer_dir is None:
            return replace(self, tokenizer=self.tokenizer or self.base.tokenizer())
        if self.stages:
            self.check_tokenizer(tokenizer_dir, vocab_size, f"model.init_from {source}")
        path = Path(tokenizer_dir).expanduser().resolve()
        return replace(self, tokenizer={"path": str(path), "files": tokenizer_files(path)}, vocab_size=vocab_size)

    def check_tokenizer(self, tokenizer_dir: str, vocab_size: int | None, what: str) -> None:
        """Refuse, naming both, a tokenizer other than the one recorded: the trained rows would name other pieces."""
        if self.tokenizer is None:
            return
        path = Path(tokenizer_dir).expanduser().resolve()
        difference = tokenizer_difference(tokenizer_fingerprint(self.tokenizer["files"]),
                                          tokenizer_fingerprint(tokenizer_files(path)))
        if difference:
            raise UserError(
                f"{what} was trained with the tokenizer {self.tokenizer['path']} ({self.vocab_size} rows), not "
                f"{path} ({vocab_size} tokens; {difference}): its trained rows would name other pieces; use the "
                "tokenizer it was trained with"
            )

    def with_new_token_init(self, method: NewTokenInit, rows: int, extended_tokenizer: Any) -> StageLineage:
        """This lineage with how the rows from ``rows`` (the model's now) to ``vocab_size`` start, for the stage
        that first grows the vocabulary; ``extended_tokenizer`` is the one it grows to."""
        if method == "mean":
            return replace(self, new_token_init=method)
        base_tokenizer = self.base.tokenizer()
        if base_tokenizer is None:
            raise UserError("model.new_token_init subtoken_mean splits each new token with the base model's own "
                            "tokenizer, and this base has none (a model_config random init, or a directory without "
                            "tokenizer files); use model.new_token_init mean, or a base with its tokenizer")
        ids = subtoken_ids(load_tokenizer(base_tokenizer["path"]), extended_tokenizer, rows)
        return replace(self, new_token_init=method, subtoken_ids=ids)

    # ----- rebuilding ---------------------------------------------------------------------------------------
    def build(self, replay_stage: Callable[[PreTrainedModel, dict[str, Any]], PreTrainedModel],
              base_dir: str | None = None) -> PreTrainedModel:
        """The base with every earlier stage replayed by ``replay_stage`` (policy, tensors, LoRA merged), each
        after resizing to its vocabulary; the stage itself resizes to ``vocab_size``. The global random state
        (LoRA's init draws from it) is left as it was."""
        model = self.base.load(base_dir)
        with torch.random.fork_rng(devices=[]):
            for stage in self.stages:
                resize_vocabulary(model, stage["vocab_size"], self.subtoken_ids)
                model = replay_stage(model, stage)
        return model


def _new_token_init(record: dict[str, Any]) -> tuple[NewTokenInit | None, list[list[int]] | None]:
    return record.get("new_token_init"), record.get("subtoken_ids")


def _prune(stages: list[dict[str, Any]], superseded: set[str]) -> list[dict[str, Any]]:
    """``stages`` without the tensors a later stage (or ``superseded``) holds whole; emptied stages vanish."""
    kept: list[dict[str, Any]] = []
    for stage in reversed(stages):
        trained = {k: v for k, v in stage["trained"].items() if "lora_" in k or plain_name(k) not in superseded}
        superseded |= whole_tensors(stage["trained"])
        if trained:
            kept.append({**stage, "trained": trained})
    return kept[::-1]
