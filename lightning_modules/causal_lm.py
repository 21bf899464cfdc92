"""``CausalLMModule``: the one LightningModule every stage runs (pretraining, LoRA, SFT).

What trains is not decided here but by the trainer's ``FreezePolicy`` callback, which the module applies in
``configure_model``; the module owns the loss, the optimizer, logging and what goes into checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, get_args

import lightning.pytorch as pl
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.strategies import DeepSpeedStrategy
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lightning_modules.freeze_policy import FreezePolicy, check_same_policy, policy_from_record
from lightning_modules.bits_per_byte import BitsPerByte, token_lengths_tensor
from lightning_modules.chunked_cross_entropy import linear_cross_entropy
from lightning_modules.flops import training_flops
from lightning_modules.fsdp2_sharding import decoder_layers, local_rows, shard_fully
from lightning_modules.model_loading import outside_zero_init, resize_vocabulary, vocab_rows
from lightning_modules.new_row_decay import decay_new_rows
from lightning_modules.optimization import adamw, cosine_with_warmup, parameter_groups
from lightning_modules.stage_checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY, lineage_after, read_stage_record
from lightning_modules.stage_lineage import Base, NewTokenInit, StageLineage, whole_tensors
from lightning_modules.throughput import RollingThroughput
from tokenization.constants import IGNORE_INDEX
from tokenization.errors import UserError
from tokenization.pretrained_tokenizer import is_gguf, load_tokenizer


class CausalLMModule(pl.LightningModule):
    def __init__(
        self,
        pretrained: str | None = None,
        model_config: dict[str, Any] | None = None,
        init_seed: int = 0,
        init_from: str | None = None,
        tokenizer: str | None = None,
        new_token_init: NewTokenInit = "mean",
        original_vocab_size: int | None = None,
        block_size: int | None = None,
        learning_rate: float = 2e-4,
        weight_decay: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        warmup_ratio: float = 0.05,
        warmup_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        activation_checkpointing: bool = False,
        loss_chunk_size: int = 1024,
        peak_flops_per_device: float | None = None,
    ) -> None:
        """A LLaMA-family causal LM and its training recipe.

        Args:
            pretrained: local Hugging Face model directory or ``.gguf`` file (dequantised) to start from.
            model_config: instead of ``pretrained``, ``LlamaConfig`` arguments of a random-init model.
            init_seed: seed of the random init (so a checkpoint of trained parameters rebuilds the whole model).
            init_from: start from a previous stage: its checkpoint, its run directory (the newest readable
                checkpoint there) or an exported HF directory; replaces ``pretrained``/``model_config``. Read
                once, when the stage starts: the stage's checkpoints carry what it contributed.
            tokenizer: HF tokenizer directory or ``.gguf`` file (default: a ``.gguf`` base's own); embedding and
                head grow to ``len(tokenizer)``.
            new_token_init: how the new rows start: ``mean`` (the mean of the old rows) or ``subtoken_mean`` (each
                row the mean of the base model's rows of the tokens the base's own tokenizer splits the new token
                into, embedding and an untied head each; Fast Vocabulary Transfer). Recorded in the checkpoint by
                the stage that grows the vocabulary; later stages, resuming and export rebuild the same rows.
            original_vocab_size: rows that ``new_rows_only`` keeps frozen; default: the base model's vocabulary
                before any resize in this stage or in earlier stages' checkpoints (an exported HF directory counts
                as a new base: all its rows are original; set this to train its added rows).
            block_size: training sequence length (linked from the data); checked against the model's positions.
            learning_rate: AdamW peak learning rate.
            weight_decay: AdamW decoupled weight decay on matrices (not on norms or biases).
            betas: AdamW betas.
            eps: AdamW epsilon.
            warmup_ratio: linear warmup as a fraction of the total optimizer steps.
            warmup_steps: warmup in steps; overrides ``warmup_ratio``.
            min_lr_ratio: cosine floor as a fraction of the peak.
            activation_checkpointing: recompute decoder layers in backward to save activation memory.
            loss_chunk_size: tokens per chunk of the chunked cross-entropy (the peak logits memory).
            peak_flops_per_device: the device's peak FLOP/s at the run's precision; enables ``train/mfu``.
        """
        super().__init__()
        self.save_hyperparameters()
        if new_token_init not in get_args(NewTokenInit):
            raise UserError(f"model.new_token_init {new_token_init!r}: choose one of {list(get_args(NewTokenInit))}")
        if init_from is not None and (pretrained is not None or model_config is not None):
            raise UserError("model.init_from replaces model.pretrained / model.model_config: give only one of them")
        self.model: PreTrainedModel | nn.Module | None = None
        self.freeze_policy: FreezePolicy | None = None
        self.frozen_vocab_rows = 0
        self.lineage: StageLineage | None = None  # where this stage starts; decided when the model is built
        self.base_dir: str | None = None  # where the lineage's base is now, when it moved (checked by fingerprint)
        #: The checkpoint a fit resumes, when known before the model is built (``zhllama fit --ckpt_path``): the
        #: stage then starts from that checkpoint's lineage and never reads ``init_from``.
        self.resume_checkpoint: str | None = None
        self._row_frozen_params: list[nn.Parameter] = []
        self._row_hooks: list[Any] = []
        self.strict_loading = False  # checkpoints hold trained parameters only; `on_load_checkpoint` checks them
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_bits = BitsPerByte()  # val/bits_per_byte, val/bits_per_char (only with a tokenizer)
        self.test_bits = BitsPerByte()
        self.throughput = RollingThroughput()

    # ----- building -------------------------------------------------------------------------------------------
    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        """``model.tokenizer``, else the tokenizer inside a ``.gguf`` base, else None."""
        hp = self.hparams
        source = hp.tokenizer if hp.tokenizer is not None else hp.pretrained if is_gguf(hp.pretrained) else None
        return None if source is None else load_tokenizer(source)

    @property
    def causal_lm(self) -> PreTrainedModel:
        """The ``*ForCausalLM`` inside any peft wrapper (LoRA layers are injected into it in place)."""
        model = self.model
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def configure_model(self) -> None:
        """Build the base model, then let the trainer's freeze policy decide what trains (before the strategy
        wraps the model and before the optimizer exists). Idempotent."""
        if self.model is not None:
            return
        policies = [c for c in (self._trainer.callbacks if self._trainer else []) if isinstance(c, FreezePolicy)]
        if len(policies) > 1:
            raise UserError(f"at most one FreezePolicy callback per run, got {[type(p).__name__ for p in policies]}")
        with outside_zero_init():  # ZeRO-3 partitions the whole, policy-applied model when its engine starts
            self.model = self._build_base_model()
            if policies:
                self.apply_freeze_policy(policies[0])
        if self.device_mesh is not None:  # Lightning's ModelParallelStrategy
            self._shard_fully()

    def _shard_fully(self) -> None:
        """FSDP2 across the data-parallel ranks (``fsdp2_sharding``). Sharding puts new parameter objects in place
        of the model's, so the row-freezing hooks move to them."""
        rows_frozen = bool(self._row_hooks)
        for hook in self._row_hooks:
            hook.remove()
        self._row_hooks, self._row_frozen_params = [], []
        shard_fully(self, decoder_layers(self.causal_lm), self.device_mesh, self.trainer.precision)
        if rows_frozen:
            self.freeze_vocab_rows()

    def _build_base_model(self) -> PreTrainedModel:
        """The model this stage starts from: its lineage (base + earlier stages, see ``stage_lineage``) rebuilt."""
        hp = self.hparams
        if self.lineage is None:
            self.lineage = self._lineage_at_start()
        model = self.lineage.build(self.replay_stage, self.base_dir)
        rows = model.get_input_embeddings().weight.shape[0]
        original = self.lineage.original_vocab_size or rows
        if self.lineage.vocab_size is not None:
            if self.lineage.vocab_size > rows and self.lineage.new_token_init is None:
                self.lineage = self.lineage.with_new_token_init(hp.new_token_init, rows, self.tokenizer)
            resize_vocabulary(model, self.lineage.vocab_size, self.lineage.subtoken_ids)
        self.original_vocab_size = hp.original_vocab_size or original
        max_positions = getattr(model.config, "max_position_embeddings", None)
        if hp.block_size and max_positions and hp.block_size > max_positions:
            raise UserError(f"block_size {hp.block_size} exceeds the model's max_position_embeddings {max_positions}")
        model.config.use_cache = False
        if hp.activation_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        return model

    def _lineage_at_start(self) -> StageLineage:
        """Where this run of the stage starts: the lineage of the checkpoint it resumes, else ``init_from``
        (read now and never again), else the base."""
        hp = self.hparams
        if self.resume_checkpoint is not None:
            return StageLineage.from_record(read_stage_record(Path(self.resume_checkpoint)))
        if hp.init_from is not None:
            lineage = lineage_after(hp.init_from)
        else:
            lineage = StageLineage(Base.of(hp.pretrained, hp.model_config, hp.init_seed))
        vocab_size = len(self.tokenizer) if self.tokenizer is not None else None
        return lineage.with_tokenizer(hp.tokenizer, vocab_size, str(hp.init_from))

    def apply_freeze_policy(self, policy: FreezePolicy) -> None:
        self.freeze_policy = policy
        policy.apply(self)
        if self.hparams.activation_checkpointing and not self.causal_lm.get_input_embeddings().weight.requires_grad:
            self.causal_lm.enable_input_require_grads()

    def freeze_vocab_rows(self) -> None:
        """Keep rows ``[:original_vocab_size]`` of the trainable embedding/head bit-identical: their gradient is
        zeroed as it is accumulated (the chunked loss does not even compute it for the head), and their AdamW
        weight decay is skipped (the optimizer decays these weights' new rows only, see
        ``on_before_optimizer_step``). Adam's update of an always-zero gradient is exactly zero."""
        n = self.original_vocab_size
        lm = self.causal_lm
        weights = [w for w in (lm.get_input_embeddings().weight, lm.get_output_embeddings().weight) if w.requires_grad]
        weights = list({id(w): w for w in weights}.values())  # a tied embedding and head: one weight, one hook
        if not weights:
            raise UserError("new_rows_only: neither embed_tokens nor lm_head trains; train one of them or drop new_rows_only")
        if n >= weights[0].shape[0]:
            raise UserError(
                f"new_rows_only: the model has {weights[0].shape[0]} rows and {n} are original, so nothing would "
                "train; attach the extended tokenizer (`model.tokenizer`) or set `model.original_vocab_size`"
            )
        self.frozen_vocab_rows = n

        def zero_original_rows(param: nn.Parameter) -> None:
            rows, first = local_rows(param.grad)  # under FSDP2 the reduced gradient's shard
            rows[: max(n - first, 0)].zero_()

        for w in weights:
            self._row_frozen_params.append(w)
            self._row_hooks.append(w.register_post_accumulate_grad_hook(zero_original_rows))

    def export_model(self) -> PreTrainedModel:
        """A plain ``*ForCausalLM`` of what this module holds: LoRA merged, row freezing undone, all parameters
        ``requires_grad=True``. Consumes the module (its model is merged in place)."""
        for hook in self._row_hooks:
            hook.remove()
        self._row_hooks, self._row_frozen_params, self.frozen_vocab_rows = [], [], 0
        model = self.model.merge_and_unload() if hasattr(self.model, "merge_and_unload") else self.model
        model.requires_grad_(True)
        if model.is_activation_checkpointing:
            model.activation_checkpointing_disable()
        model.config.use_cache = True
        return model

    # ----- steps ----------------------------------------------------------------------------------------------
    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Last hidden states [B, T, d] (the head is applied inside the chunked loss)."""
        return self.causal_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean next-token cross-entropy over labelled tokens (labels aligned with ``input_ids``, ``-100`` ignored,
        shifted here) and the number of labelled tokens."""
        # FSDP2 gathers this root unit's parameters (embedding, head) in the call; under ZeRO-3 a nested call of
        # this module would release the head gathered for the step, so elsewhere the forward runs directly
        forward = self if self.device_mesh is not None else self.forward
        hidden = forward(batch["input_ids"], batch.get("attention_mask"))
        targets = batch["labels"][:, 1:]
        head = self.causal_lm.get_output_embeddings()
        from_row = self.frozen_vocab_rows if any(head.weight is p for p in self._row_frozen_params) else 0
        loss = linear_cross_entropy(hidden[:, :-1], head.weight, targets, self.hparams.loss_chunk_size, from_row)
        return loss, (targets != IGNORE_INDEX).sum()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.lr_schedulers().get_last_lr()[0])
        return loss

    def on_fit_start(self) -> None:
        """Lightning divides each micro-batch's loss by ``accumulate_grad_batches`` and DeepSpeed's backward would
        divide it again by the same number (its ``gradient_accumulation_steps``): only Lightning's division stays."""
        if self.deepspeed_engine is not None:
            self.deepspeed_engine.scale_wrt_gas = False

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.throughput.start(self.device)

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Tensor], batch_idx: int) -> None:
        """``train/tokens_per_s``: non-padding tokens of all devices per second; ``train/mfu``: model FLOP/s of
        this device over ``peak_flops_per_device``. Both over the last steps, the device synchronised."""
        mask = batch.get("attention_mask")
        ids = batch["input_ids"]
        lengths = mask.sum(dim=1).tolist() if mask is not None else [ids.shape[1]] * ids.shape[0]
        flops = training_flops(self.causal_lm.config, lengths)
        tokens_per_s, flops_per_s = self.throughput.end(self.device, sum(lengths), flops)
        self.log("train/tokens_per_s", tokens_per_s * self.trainer.world_size)
        if self.hparams.peak_flops_per_device:
            self.log("train/mfu", flops_per_s / self.hparams.peak_flops_per_device)
        engine = self.deepspeed_engine
        if engine is not None and engine.was_step_applied():
            self.log("train/grad_norm", float(engine.get_global_grad_norm()))

    def on_validation_start(self) -> None:
        self.throughput.pause()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, n = self.loss(batch)
        self.val_loss.update(loss, n)
        if self.token_lengths is not None:
            self.val_bits.update(loss, batch["labels"][:, 1:], self.token_lengths)

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val", self.val_loss, self.val_bits)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, n = self.loss(batch)
        self.test_loss.update(loss, n)
        if self.token_lengths is not None:
            self.test_bits.update(loss, batch["labels"][:, 1:], self.token_lengths)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test", self.test_loss, self.test_bits)

    @property
    def token_lengths(self) -> Tensor | None:
        """The tokenizer's ``[2, vocab]`` bytes/characters per token id, built on first use and kept as a
        non-persistent buffer on the module's device; None without a tokenizer."""
        if self.tokenizer is None:
            return None
        if getattr(self, "_token_lengths", None) is None:
            rows = vocab_rows(self.causal_lm)
            self.register_buffer("_token_lengths", token_lengths_tensor(self.tokenizer, rows).to(self.device),
                                 persistent=False)
        return self._token_lengths

    def _log_eval(self, prefix: str, metric: MeanMetric, bits: BitsPerByte) -> None:
        mean = metric.compute()
        metric.reset()
        self.log(f"{prefix}/loss", mean, prog_bar=True)
        self.log(f"{prefix}/ppl", torch.exp(mean.clamp(max=50.0)))
        if bits.update_called:
            for name, value in bits.compute().items():
                self.log(f"{prefix}/{name}", value)
        bits.reset()

    # ----- optimization ---------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = parameter_groups(self.named_parameters(), hp.weight_decay, no_decay=self._row_frozen_params)
        clips_mixed = bool(self.trainer.gradient_clip_val) and isinstance(self.trainer.precision_plugin, MixedPrecision)
        optimizer = adamw(groups, hp.learning_rate, tuple(hp.betas), hp.eps, allow_fused=not clips_mixed)
        if isinstance(self.trainer.strategy, DeepSpeedStrategy):
            # its engine starts next: under ZeRO-Offload this AdamW steps the offloaded partitions on the CPU,
            # where DeepSpeed would refuse any optimizer but its own compiled DeepSpeedCPUAdam
            self.trainer.strategy.config["zero_force_ds_cpu_optimizer"] = False
        total = int(self.trainer.estimated_stepping_batches)
        warmup = hp.warmup_steps if hp.warmup_steps is not None else math.ceil(hp.warmup_ratio * total)
        scheduler = cosine_with_warmup(optimizer, warmup, total, hp.min_lr_ratio)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    @property
    def deepspeed_engine(self) -> Any | None:
        """The DeepSpeed engine training this module; None under any other strategy."""
        strategy = self._trainer.strategy if self._trainer else None
        return strategy.deepspeed_engine if isinstance(strategy, DeepSpeedStrategy) else None

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """``train/grad_norm`` of the gradients about to step (under DeepSpeed, which moves them into its ZeRO
        partitions, the engine's global norm, logged after its step), then the new rows' weight decay."""
        engine = self.deepspeed_engine
        grads = [p.grad for p in self.parameters() if p.grad is not None] if engine is None else []
        if grads:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
            self.log("train/grad_norm", norm)
        # AdamW's decoupled decay, new rows only, applied just before the update exactly as torch's AdamW would;
        # DeepSpeed is called at every micro-batch and steps at the last of `gradient_accumulation_steps` only
        if self.hparams.weight_decay and (engine is None or engine.is_gradient_accumulation_boundary()):
            lr = optimizer.param_groups[0]["lr"]  # one learning rate: the groups differ in weight decay only
            for p in self._row_frozen_params:
                decay_new_rows(p, self.frozen_vocab_rows, lr, self.hparams.weight_decay)

    # ----- checkpoints ----------------------------------------------------------------------------------------
    def trainable_parameter_names(self) -> set[str]:
        return {name for name, p in self.named_parameters() if p.requires_grad}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep trained parameters only, plus the ``zhllama`` record: the freeze policy, the vocabulary, and the
        lineage (base fingerprint, earlier stages' tensors) that rebuilds the frozen rest with no other file."""
        trainable = self.trainable_parameter_names()
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}
        checkpoint[CHECKPOINT_KEY] = {
            "format": CHECKPOINT_FORMAT,
            "freeze_policy": self.freeze_policy.record() if self.freeze_policy else None,
            "original_vocab_size": self.original_vocab_size,
            "vocab_size": vocab_rows(self.causal_lm),
            "trainable": sorted(trainable),
            **self.lineage.to_record(superseded=whole_tensors(trainable)),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming: same policy and tokenizer, and the model rebuilt from the checkpoint's own lineage when the
        stage it started from has changed since (continued, moved or deleted)."""
        record = checkpoint.get(CHECKPOINT_KEY)
        if record is None or record.get("format") != CHECKPOINT_FORMAT:
            raise UserError("the checkpoint to resume was not written by this zhllama's `zhllama fit` (no zhllama "
                            f"record of format {CHECKPOINT_FORMAT}); start a new stage from it with model.init_from")
        check_same_policy(record["freeze_policy"], self.freeze_policy.record() if self.freeze_policy else None)
        if "state_dict" not in checkpoint:  # DeepSpeed: its engine restores the whole module itself
            return
        saved = StageLineage.from_record(record)
        if self.hparams.tokenizer is not None:
            saved.check_tokenizer(self.hparams.tokenizer, len(self.tokenizer), "the checkpoint to resume")
        if not saved.same_start(self.lineage, whole_tensors(self.trainable_parameter_names())):
            self._restart_from(saved)
        self.check_trained_state(checkpoint["state_dict"])

    @staticmethod
    def replay_stage(model: PreTrainedModel, stage: dict[str, Any]) -> PreTrainedModel:
        """``model`` after an earlier stage: its policy applied, its (kept) trained tensors loaded, LoRA merged."""
        replay = CausalLMModule()
        replay.model, replay.original_vocab_size = model, stage["original_vocab_size"]
        if stage["freeze_policy"] is not None:
            replay.apply_freeze_policy(policy_from_record(stage["freeze_policy"]))
        replay.load_trained_state(stage["trained"], complete=False)
        return replay.export_model()

    def _restart_from(self, lineage: StageLineage) -> None:
        """Rebuild the model on ``lineage`` before the strategy sets it up (as ``configure_model`` did)."""
        if lineage.base.identity() == self.lineage.base.identity():
            lineage = replace(lineage, base=self.lineage.base)  # the same base, where this run found it
        for hook in self._row_hooks:
            hook.remove()
        self._row_hooks, self._row_frozen_params, self.frozen_vocab_rows = [], [], 0
        self.model, self.lineage = None, lineage
        trainer = self.trainer
        with trainer.strategy.tensor_init_context(), trainer.precision_plugin.module_init_context():
            self.model = self._build_base_model()
        if self.freeze_policy is not None:
            self.apply_freeze_policy(self.freeze_policy)

    def check_trained_state(self, state_dict: dict[str, Tensor], complete: bool = True) -> None:
        """``state_dict`` holds trained parameters of this model: each of them (``complete``) or some."""
        trainable = self.trainable_parameter_names()
        missing = sorted(trainable - state_dict.keys()) if complete else []
        unexpected = sorted(state_dict.keys() - trainable)
        if missing or unexpected:
            raise UserError(
                f"checkpoint does not match this model's trainable parameters: missing {missing[:5]} "
                f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
            )

    def load_trained_state(self, state_dict: dict[str, Tensor], complete: bool = True) -> None:
        """Load a checkpoint's trained parameters into the built, policy-applied model (``complete=False``: an
        earlier stage's tensors, of which later stages superseded some)."""
        self.check_trained_state(state_dict, complete)
        self.load_state_dict(state_dict, strict=False)
