"""``zhllama tokenizer train | merge | stats``: give LLaMA a Chinese vocabulary.

- ``train``: a SentencePiece model on Chinese text (files, directories, globs; streamed); ``--kind bpe``: new
  merges continuing a byte-level base's BPE (SmolLM2, LLaMA-3, Qwen2, Tekken).
- ``merge``: base + added SentencePiece model -> a Hugging Face tokenizer directory (``--mode clean|anchor``);
  a byte-level base + learned merges -> the same.
- ``stats``: one JSON object of tokenization statistics, optionally against a base tokenizer.

Errors about inputs (missing files, non-SentencePiece models, colliding pieces, bad records, impossible training
options) are printed as one line naming the file and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cli.parsers import PARSER_KWARGS, command_parser
from tokenization.errors import UserError


#: ``tokenizer train`` options of one kind of training only, with their defaults (``--kind bpe``'s here).
BPE_ONLY: dict[str, object] = {"base": None, "min_frequency": 2}
SENTENCEPIECE_ONLY = (
    "character_coverage", "model_type", "input_sentence_size", "max_sentence_length", "num_threads", "seed"
)


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    from tokenization.train import TrainArgs

    p = subparsers.add_parser("train", help="train a SentencePiece model on Chinese text", **PARSER_KWARGS)
    p.add_argument("--input", nargs="+", required=True, help=".txt / .jsonl / .jsonl.gz files, directories or globs")
    p.add_argument(
        "--output", required=True,
        help="model prefix: writes OUTPUT.model and OUTPUT.vocab (--kind bpe: the JSON file of learned merges)",
    )
    defaults = TrainArgs(inputs=[], model_prefix="")
    p.add_argument(
        "--kind", default="sentencepiece", choices=("sentencepiece", "bpe"),
        help="sentencepiece: a Chinese SentencePiece model; bpe: new merges continuing a byte-level --base",
    )
    p.add_argument(
        "--base", default=None, help="--kind bpe: byte-level base (tokenizer.json, its dir, .gguf, tekken.json)"
    )
    p.add_argument(
        "--min_frequency", type=int, default=BPE_ONLY["min_frequency"], help="--kind bpe: stop when the best pair is rarer"
    )
    p.add_argument("--text_field", default=defaults.text_field, help="JSON field holding the text (.jsonl inputs)")
    p.add_argument(
        "--vocab_size", type=int, default=defaults.vocab_size,
        help="pieces of the Chinese model (--kind bpe: new tokens to learn)",
    )
    p.add_argument(
        "--character_coverage", type=float, default=defaults.character_coverage,
        help="share of characters the vocabulary covers; the rarest rest become <unk>",
    )
    p.add_argument(
        "--model_type", default=defaults.model_type, choices=("unigram", "bpe", "char", "word"),
        help="SentencePiece model type",
    )
    p.add_argument(
        "--input_sentence_size", type=int, default=defaults.input_sentence_size,
        help="sample at most this many sentences (0: all), shuffled",
    )
    p.add_argument(
        "--max_sentence_length", type=int, default=defaults.max_sentence_length,
        help="bytes; longer lines are cut at sentence ends first",
    )
    p.add_argument("--num_threads", type=int, default=defaults.num_threads, help="SentencePiece trainer threads")
    p.add_argument(
        "--on_bad_record", default=defaults.on_bad_record, choices=("error", "skip"),
        help="error: stop at a bad record naming file:line; skip: count it and go on",
    )
    p.add_argument("--seed", type=int, default=defaults.seed, help="seeds the sentence sampling")


def add_merge_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge", help="merge an added SentencePiece model into a base one -> HF tokenizer dir", **PARSER_KWARGS
    )
    p.add_argument(
        "--base", required=True,
        help="SentencePiece tokenizer.model (or its dir), or byte-level tokenizer.json / its dir / .gguf / tekken.json",
    )
    p.add_argument(
        "--add", required=True,
        help="SentencePiece model whose pieces are added (byte-level base: the JSON of `train --kind bpe`)",
    )
    p.add_argument("--output", required=True, help="directory to write (replaced only if it is a tokenizer output)")
    p.add_argument(
        "--mode",
        default="clean",
        choices=("clean", "anchor"),
        help="clean: reachable CJK pieces only, SentencePiece = transformers ids; anchor: Chinese-LLaMA-Alpaca's merge",
    )
    p.add_argument("--pad_token", default=None, help='add this pad token (e.g. "[PAD]") if the vocabulary lacks it')


def add_stats_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="tokenization statistics as one JSON object", **PARSER_KWARGS)
    p.add_argument(
        "--tokenizer", required=True,
        help="SentencePiece .model or a dir holding tokenizer.model; or a byte-level tokenizer.json / dir / .gguf",
    )
    p.add_argument("--base", default=None, help="a second tokenizer to compare with (ratios tokenizer / base)")
    p.add_argument("--input", nargs="+", required=True, help=".txt / .jsonl / .jsonl.gz files, directories or globs")
    p.add_argument("--text_field", default="text", help="JSON field holding the text (.jsonl inputs)")
    p.add_argument(
        "--on_bad_record", default="error", choices=("error", "skip"),
        help="error: stop at a bad record naming file:line; skip: count it and go on",
    )
    p.add_argument("--max_documents", type=int, default=None, help="read at most this many documents (None: all)")


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("zhllama tokenizer", __doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_merge_parser(subparsers)
    add_stats_parser(subparsers)
    return parser


def refuse_options_of_the_other_kind(args: argparse.Namespace, defaults: dict[str, object]) -> None:
    """An option of the other kind of training would be silently ignored: refuse it, naming it."""
    given = [f"--{name}" for name, default in defaults.items() if getattr(args, name) != default]
    if given:
        other = "sentencepiece" if args.kind == "bpe" else "bpe"
        raise UserError(f"{', '.join(given)}: only for --kind {other}, not --kind {args.kind}; drop them")


def run_train(args: argparse.Namespace) -> dict:
    from tokenization.train import TrainArgs, train_sentencepiece

    if args.kind == "bpe":
        defaults = TrainArgs(inputs=[], model_prefix="")
        refuse_options_of_the_other_kind(args, {name: getattr(defaults, name) for name in SENTENCEPIECE_ONLY})
        return run_train_bpe(args)
    refuse_options_of_the_other_kind(args, BPE_ONLY)
    return train_sentencepiece(
        TrainArgs(
            inputs=args.input,
            model_prefix=args.output,
            text_field=args.text_field,
            vocab_size=args.vocab_size,
            character_coverage=args.character_coverage,
            model_type=args.model_type,
            input_sentence_size=args.input_sentence_size,
            max_sentence_length=args.max_sentence_length,
            num_threads=args.num_threads,
            on_bad_record=args.on_bad_record,
            seed=args.seed,
        ),
        log=lambda line: print(line, file=sys.stderr),
    )


def run_train_bpe(args: argparse.Namespace) -> dict:
    from tokenization.bpe_training import train_bpe_extension

    if args.base is None:
        raise UserError("--kind bpe needs --base: the byte-level tokenizer to extend (tokenizer.json, dir, .gguf)")
    return train_bpe_extension(
        args.base, args.input, args.output, num_merges=args.vocab_size, min_frequency=args.min_frequency,
        text_field=args.text_field, on_bad_record=args.on_bad_record,
    )


def run_merge(args: argparse.Namespace) -> dict:
    from tokenization.merge import merge_tokenizers
    from tokenization.tokenizer_kind import tokenizer_kind

    if tokenizer_kind(args.base) == "byte_level":
        from tokenization.bpe_merge import merge_bpe_extension

        if args.mode != "clean" or args.pad_token is not None:
            raise UserError(
                "--mode anchor and --pad_token are for SentencePiece bases; a byte-level base keeps its own"
            )
        return merge_bpe_extension(args.base, args.add, args.output)
    return merge_tokenizers(args.base, args.add, args.output, mode=args.mode, pad_token=args.pad_token)


def run_stats(args: argparse.Namespace) -> dict:
    from tokenization.stats import compare_stats

    return compare_stats(
        args.tokenizer,
        args.input,
        base=args.base,
        text_field=args.text_field,
        on_bad_record=args.on_bad_record,
        max_documents=args.max_documents,
    )


RUNNERS = {"train": run_train, "merge": run_merge, "stats": run_stats}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        result = RUNNERS[args.command](args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:  # input errors: their messages name the fix
        raise UserError(str(exc)) from exc
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
