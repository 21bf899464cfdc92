"""Command-line entry points: ``zhllama ...`` and ``python -m cli ...`` are the same program."""
