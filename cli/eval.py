"""``zhllama eval``: how well a model predicts text, in figures that compare models with different tokenizers.

    zhllama eval --model MODEL --input FILE_OR_DIR... [--window 512] [--stride 256] [--max_docs N] [--json]
    zhllama eval --model BASE --tokenizer EXTENDED [--new_token_init subtoken_mean] --input ...   # before training

For each input file and in total: bits per character (Unicode code points) and per UTF-8 byte, tokens per
character and token perplexity, overall and split into CJK characters and the rest. Bits per character do not
depend on the tokenizer; token perplexity does (a tokenizer that needs half the tokens has a higher one).

Scoring: each document is encoded without special tokens; one BOS token (EOS if the tokenizer has no BOS) is put
before it as context only, so the document's first token is scored given BOS, and that token is never scored
itself. Every token of every document is scored exactly once: a document longer than the window is scored in
windows that start --stride tokens apart, each scoring only tokens not scored before, so each sees at least
window - stride tokens of context. A token's nats go to the CJK characters and the others it covers, in
proportion. Inputs are read as `data prepare` reads them (.jsonl, .jsonl.gz, .txt, .txt.gz; a bad record stops the run
naming file:line). The model runs on the GPU in bf16 if there is one, else on the CPU in fp32.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from cli.parsers import command_parser
from tokenization.corpus import BadRecordError, Document, UnreadableFileError, iter_documents, resolve_inputs
from tokenization.errors import UserError

MODEL_HELP = ("an exported or any Hugging Face model directory, a `zhllama fit` checkpoint or run directory, or a "
              ".gguf file (its tokenizer comes from the same file)")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("zhllama eval", __doc__)
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--input", required=True, nargs="+", help="text files, directories or globs (.jsonl, "
                        ".jsonl.gz, .txt, .txt.gz; one document a line)")
    parser.add_argument("--tokenizer", default=None, help="a larger tokenizer (its extension) for a base --model: "
                        "the base grown to it, before any training")
    parser.add_argument("--new_token_init", choices=("mean", "subtoken_mean"), default="mean",
                        help="with --tokenizer: how the new rows start (as fit's --model.new_token_init)")
    parser.add_argument("--window", type=int, default=512, help="tokens per forward pass (context + scored)")
    parser.add_argument("--stride", type=int, default=256, help="tokens between window starts (0 < stride < window)")
    parser.add_argument("--max_docs", type=int, default=None, help="score only the first N documents of all inputs")
    parser.add_argument("--json", action="store_true", help="one JSON object a line per input file, the last the "
                        "totals, instead of a table")
    return parser


def documents(inputs: list[str], max_docs: int | None) -> Iterator[Document]:
    """The inputs' documents in order; a bad record stops the run naming ``file:line``."""
    try:
        yield from islice(iter_documents(inputs), max_docs)
    except BadRecordError as error:  # the reader's own advice names data prepare's --on_bad_record, not ours
        where_what = str(error).split(". Fix or remove")[0]
        raise UserError(f"{where_what}; fix or remove that record (zhllama eval scores every record)") from None
    except UnreadableFileError as error:
        where_what = str(error).split(", or set on_bad_record")[0]
        raise UserError(f"{where_what}.") from None


def table(rows: list[dict]) -> str:
    """A fixed-width table of the figures, one row per input and the total."""
    def cell(value: object) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    columns = [("bits/char", ("bits_per_char",)), ("bits/byte", ("bits_per_byte",)),
               ("tok/char", ("tokens_per_char",)), ("tok ppl", ("token_perplexity",)),
               ("CJK chars", ("cjk", "chars")), ("CJK bits/char", ("cjk", "bits_per_char")),
               ("CJK tok/char", ("cjk", "tokens_per_char")), ("other bits/char", ("other", "bits_per_char")),
               ("other tok/char", ("other", "tokens_per_char"))]
    width = max(len(str(row["input"])) for row in rows)
    lines = [f"{'input':<{width}}  {'docs':>5}  " + "  ".join(f"{name:>{len(name)}}" for name, _ in columns)]
    for row in rows:
        values = []
        for name, keys in columns:
            value: object = row
            for key in keys:
                value = value[key]  # type: ignore[index]
            values.append(f"{cell(value):>{len(name)}}")
        lines.append(f"{str(row['input']):<{width}}  {row['documents']:>5}  " + "  ".join(values))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_docs is not None and args.max_docs < 1:
        raise UserError(f"--max_docs {args.max_docs}: give a positive number of documents")
    resolve_inputs(args.input)  # a missing or unsupported input fails before the model loads
    from tqdm import tqdm
    from transformers.utils.logging import disable_progress_bar

    from lightning_modules.generation import DTYPES, resolve_placement
    from lightning_modules.model_source import load_model_and_tokenizer
    from lightning_modules.text_scoring import ScoreTotals, TextScorer, sliding_windows

    sliding_windows(2, args.window, args.stride)
    disable_progress_bar()  # loading bars of transformers: the documents' bar below is the one that counts
    device, dtype = resolve_placement()
    model, tokenizer = load_model_and_tokenizer(args.model, DTYPES[dtype], args.tokenizer, args.new_token_init)
    scorer = TextScorer(model.to(device), tokenizer, args.window, args.stride)
    per_file: dict[Path, ScoreTotals] = {}
    total = ScoreTotals()
    paths: deque[Path] = deque()  # the file of each document handed to the scorer and not yet scored

    def texts() -> Iterator[str]:
        for document in documents(args.input, args.max_docs):
            paths.append(document.path)
            yield document.text

    progress = tqdm(total=args.max_docs, unit="doc", desc="zhllama eval", file=sys.stderr, disable=None)
    for score in scorer.score(texts()):
        totals = score.totals()
        per_file.setdefault(paths.popleft(), ScoreTotals()).add(totals)
        total.add(totals)
        progress.update(1)
    progress.close()
    if total.documents == 0:
        raise UserError(f"{' '.join(args.input)}: no documents to score (every line is blank)")
    rows = [{"input": str(path), **totals.summary()} for path, totals in per_file.items()]
    rows.append({"input": "total", "model": str(args.model), "window": args.window, "stride": args.stride,
                 **total.summary()})
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
