"""Giving a model a Chinese vocabulary, and the first layer every other package builds on.

- SentencePiece bases (LLaMA-1/2, Mistral v1): :mod:`train` (``zhllama tokenizer train``), :mod:`merge`
  (:mod:`merge_anchor` or :mod:`merge_clean`, then :mod:`hf_tokenizer_files`), :mod:`sentencepiece_proto`,
  :mod:`reachability`, :mod:`sentencepiece_equivalent` (data preparation's opt-in fast exact encoder).
- Byte-level BPE bases (SmolLM2, LLaMA-3, Qwen2, Tekken): :mod:`bpe_training` (``train --kind bpe``),
  :mod:`bpe_merge`, :mod:`byte_level_base`, :mod:`byte_level_tokens`, :mod:`gguf_tokenizer`, :mod:`tekken`;
  :mod:`tokenizer_kind` tells the two kinds apart.
- Both: :mod:`stats` (``zhllama tokenizer stats``), :mod:`cjk` (what is Chinese), :mod:`token_byte_lengths`
  (bytes and characters per token id), :mod:`pretrained_tokenizer` (the one tokenizer loader, ``.gguf`` too).
- Project-wide helpers: :mod:`corpus` (the corpus reader), :mod:`atomic_write` (every output), :mod:`errors`
  (``UserError``), :mod:`cache_dir`, :mod:`constants`.
"""
