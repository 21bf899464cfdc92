"""Values every layer agrees on: SentencePiece's space marker and the label the loss ignores."""

SPACE_PIECE = "\u2581"
"""SentencePiece writes a space as U+2581 (``▁``) inside pieces."""

IGNORE_INDEX = -100
"""Label of a position that carries no loss (SFT prompt and padding); PyTorch's cross-entropy default."""
