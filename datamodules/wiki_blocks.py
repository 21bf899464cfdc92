"""``WikiBlocksDataModule``: Chinese corpora packed into fixed-length blocks for continued pretraining.

Every document is tokenized without special tokens and framed ``BOS ... EOS`` (so the model learns where a
document ends), all documents are concatenated and cut into ``block_size`` blocks with
``labels = input_ids``; only the final remainder of each stream (train, validation) is dropped and reported.
The tokens live in a memory-mapped cache (:mod:`datamodules.token_cache`) built once by parallel workers in
flat memory (:mod:`datamodules.token_cache_builder`); the validation split is by document
(:mod:`datamodules.doc_split`); the train loader resumes mid-epoch from Lightning checkpoints
(:mod:`datamodules.resumable_loader`).
"""

from __future__ import annotations

from typing import Literal

import lightning as L
from torch.utils.data import DataLoader

from datamodules.doc_split import validation_count
from datamodules.resumable_loader import ResumableLoader
from datamodules.token_blocks import TokenBlocks
from datamodules.token_cache import TokenCache, cache_root
from datamodules.token_cache_builder import PreparedData, prepare_token_cache
from tokenization.corpus import resolve_inputs
from tokenization.errors import UserError


class WikiBlocksDataModule(L.LightningDataModule):
    """Pretraining data: documents from ``.jsonl``/``.jsonl.gz``/``.txt`` files packed into token blocks.

    Args:
        tokenizer: Hugging Face tokenizer directory (the merged Chinese tokenizer) or a ``.gguf`` file.
        inputs: Files, directories or globs of ``.jsonl``, ``.jsonl.gz`` (one JSON object a line) or
            ``.txt`` (one document a line).
        block_size: Tokens per training example.
        batch_size: Blocks per batch on each device.
        cache_dir: Where token caches live; default ``$ZHLLAMA_TOKEN_CACHE``, else
            ``$XDG_CACHE_HOME/zhllama/tokens``, else ``~/.cache/zhllama/tokens``.
        text_field: JSON field holding the document text.
        val_fraction: Share of documents held out for validation (ignored when ``val_documents`` is set).
        val_documents: Exact number of documents held out for validation.
        seed: Seeds the validation split and the per-epoch shuffling.
        num_proc: Tokenizer processes when building the cache (default: the CPUs of the machine it runs on,
            at most 16).
        num_workers: DataLoader worker processes.
        on_bad_record: ``error`` stops at a bad record naming ``file:line``; ``skip`` counts and reports it.
        chunk_bytes: Raw text per work item of the tokenizer processes (memory in flight is about
            ``4 * num_proc * chunk_bytes``).
        fast_path: Opt-in: encode with SentencePiece wherever it is proven to give the tokenizer's exact ids
            (about twice as fast on Chinese). Off, ``tokenizers`` encodes every document. Same ids, same cache.
    """

    def __init__(
        self,
        tokenizer: str,
        inputs: str | list[str],
        block_size: int = 512,
        batch_size: int = 16,
        cache_dir: str | None = None,
        text_field: str = "text",
        val_fraction: float = 0.01,
        val_documents: int | None = None,
        seed: int = 42,
        num_proc: int | None = None,
        num_workers: int = 0,
        on_bad_record: Literal["error", "skip"] = "error",
        chunk_bytes: int = 1 << 20,
        fast_path: bool = False,
    ) -> None:
        super().__init__()
        if block_size < 1 or batch_size < 1:
            raise UserError(f"block_size and batch_size must be positive, got {block_size} and {batch_size}")
        if on_bad_record not in ("error", "skip"):
            raise UserError(f"on_bad_record must be 'error' or 'skip', not {on_bad_record!r}")
        validation_count(0, val_fraction, val_documents)  # rejects impossible settings before any work
        self.save_hyperparameters()
        self.tokenizer = tokenizer
        self.inputs = inputs
        self.block_size = block_size
        self.batch_size = batch_size
        self.cache_dir = cache_root(cache_dir)
        self.text_field = text_field
        self.val_fraction = val_fraction
        self.val_documents = val_documents
        self.seed = seed
        self.num_proc = num_proc
        self.num_workers = num_workers
        self.on_bad_record = on_bad_record
        self.chunk_bytes = chunk_bytes
        self.fast_path = fast_path
        self.train_set: TokenBlocks | None = None
        self.val_set: TokenBlocks | None = None
        self.cache: TokenCache | None = None

    # ---- building the cache ----------------------------------------------------------------------------
    def prepare(self) -> PreparedData:
        """Reuses the matching token cache or builds it; safe to call from any process (the cache is atomic)."""
        try:
            resolve_inputs(self.inputs)
        except (FileNotFoundError, ValueError) as error:
            raise UserError(f"data.inputs: {error}") from None
        prepared = prepare_token_cache(
            self.tokenizer,
            self.inputs,
            cache_dir=self.cache_dir,
            text_field=self.text_field,
            val_fraction=self.val_fraction,
            val_documents=self.val_documents,
            seed=self.seed,
            num_proc=self.num_proc,
            on_bad_record=self.on_bad_record,
            chunk_bytes=self.chunk_bytes,
            fast_path=self.fast_path,
        )
        self.cache = prepared.cache
        return prepared

    # ---- Lightning hooks -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cache = self.cache or self.prepare().cache
        lengths, is_val = cache.doc_lengths(), cache.is_val()
        self.train_set = TokenBlocks(cache.tokens_path, cache.dtype, lengths, ~is_val, self.block_size)
        self.val_set = TokenBlocks(cache.tokens_path, cache.dtype, lengths, is_val, self.block_size)

    def _require(self, dataset: TokenBlocks | None, name: str) -> TokenBlocks:
        if dataset is None:
            raise RuntimeError("call setup() before asking for dataloaders")
        if len(dataset) == 0:
            raise UserError(
                f"the {name} split has {dataset.num_tokens} tokens, less than one block of {self.block_size}; "
                "add documents, raise val_fraction/val_documents or lower block_size"
            )
        return dataset

    def train_dataloader(self) -> ResumableLoader:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (None, None)
        return ResumableLoader(
            self._require(self.train_set, "train"),
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            drop_last=True,
            rank=rank,
            world_size=world_size,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is not None and self.val_set.num_tokens == 0:
            return []  # no validation split asked for (val_fraction=0): Lightning then skips validation
        return DataLoader(
            self._require(self.val_set, "validation"), batch_size=self.batch_size, num_workers=self.num_workers
        )

    def test_dataloader(self) -> DataLoader | list:
        """``zhllama test`` scores the held-out documents: the corpus has no third split."""
        return self.val_dataloader()
