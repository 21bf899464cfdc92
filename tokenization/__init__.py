"""Giving LLaMA a Chinese vocabulary: train a SentencePiece model, merge it into a base, write a HF tokenizer.

- :mod:`tokenization.train`: ``zhllama tokenizer train`` (SentencePiece on a streamed corpus)
- :mod:`tokenization.merge`: ``zhllama tokenizer merge`` (:mod:`merge_anchor` or :mod:`merge_clean`, then
  :mod:`hf_tokenizer_files` into a directory written by :mod:`atomic_write`)
- :mod:`tokenization.stats`: ``zhllama tokenizer stats``
- helpers: :mod:`sentencepiece_proto` (the protobuf), :mod:`cjk` (what is Chinese), :mod:`reachability`.
- :mod:`tokenization.sentencepiece_equivalent`: a SentencePiece model proven to encode like a
  ``tokenizer.json`` (data preparation's fast exact encoder).
"""
