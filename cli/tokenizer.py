"""``zhllama tokenizer train | merge | stats``: give LLaMA a Chinese vocabulary.

- ``train``: a SentencePiece model on Chinese text (files, directories, globs; streamed).
- ``merge``: base + added SentencePiece model -> a Hugging Face tokenizer directory (``--mode clean|anchor``).
- ``stats``: one JSON object of tokenization statistics, optionally against a base tokenizer.

Errors about inputs (missing files, non-SentencePiece models, colliding pieces, bad records, impossible training
options) are printed as one line naming the file and the fix, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    from tokenization.train import TrainArgs

    p = subparsers.add_parser("train", help="train a SentencePiece model on Chinese text")
    p.add_argument("--input", nargs="+", required=True, help=".txt / .jsonl / .jsonl.gz files, directories or globs")
    p.add_argument("--output", required=True, help="model prefix: writes OUTPUT.model and OUTPUT.vocab")
    defaults = TrainArgs(inputs=[], model_prefix="")
    p.add_argument("--text-field", "--text_field", default=defaults.text_field, help="JSON field holding the text (.jsonl inputs)")
    p.add_argument("--vocab-size", "--vocab_size", type=int, default=defaults.vocab_size)
    p.add_argument("--character-coverage", "--character_coverage", type=float, default=defaults.character_coverage)
    p.add_argument("--model-type", "--model_type", default=defaults.model_type, choices=("unigram", "bpe", "char", "word"))
    p.add_argument(
        "--input-sentence-size", "--input_sentence_size",
        type=int,
        default=defaults.input_sentence_size,
        help="sample at most this many sentences (0: all), shuffled",
    )
    p.add_argument("--max-sentence-length", "--max_sentence_length", type=int, default=defaults.max_sentence_length)
    p.add_argument("--num-threads", "--num_threads", type=int, default=defaults.num_threads)
    p.add_argument("--on-bad-record", "--on_bad_record", default=defaults.on_bad_record, choices=("error", "skip"))
    p.add_argument("--seed", type=int, default=defaults.seed)


def add_merge_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("merge", help="merge an added SentencePiece model into a base one -> HF tokenizer dir")
    p.add_argument("--base", required=True, help="base SentencePiece model (LLaMA-family tokenizer.model or its dir)")
    p.add_argument("--add", required=True, help="SentencePiece model whose pieces are added (e.g. chinese_sp.model)")
    p.add_argument("--output", required=True, help="directory to write (replaced only if it is a tokenizer output)")
    p.add_argument(
        "--mode",
        default="clean",
        choices=("clean", "anchor"),
        help="clean: reachable CJK pieces only, SentencePiece = transformers ids; anchor: Chinese-LLaMA-Alpaca's merge",
    )
    p.add_argument("--pad-token", default=None, help='add this pad token (e.g. "[PAD]") if the vocabulary lacks it')


def add_stats_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="tokenization statistics as one JSON object")
    p.add_argument("--tokenizer", required=True, help="SentencePiece .model, or a tokenizer dir holding tokenizer.model")
    p.add_argument("--base", default=None, help="a second tokenizer to compare with (ratios tokenizer / base)")
    p.add_argument("--input", nargs="+", required=True, help=".txt / .jsonl / .jsonl.gz files, directories or globs")
    p.add_argument("--text-field", "--text_field", default="text", help="JSON field holding the text (.jsonl inputs)")
    p.add_argument("--on-bad-record", "--on_bad_record", default="error", choices=("error", "skip"))
    p.add_argument("--max-documents", "--max_documents", type=int, default=None, help="read at most this many documents")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zhllama tokenizer", description=__doc__.split("\n\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_merge_parser(subparsers)
    add_stats_parser(subparsers)
    return parser


def run_train(args: argparse.Namespace) -> dict:
    from tokenization.train import TrainArgs, train_sentencepiece

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


def run_merge(args: argparse.Namespace) -> dict:
    from tokenization.merge import merge_tokenizers

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
        print(f"zhllama tokenizer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
