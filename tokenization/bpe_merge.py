"""``zhllama tokenizer merge`` for a byte-level base: appends learned merges and their tokens to its tokenizer.json.

New tokens get the ids after every id the base uses (vocabulary and added/special tokens alike), so the base's
ids, its ``added_tokens`` and the ids its post-processor names stay as they are; the learned merges go after the
base's, so its merges always apply first. Normalizer, pre-tokenizer (and so the pre-token boundaries no merge can
cross), ``ignore_merges`` and decoder are the base's.

Every new token that decodes to whole characters must be *reachable*: encoding its own text gives exactly that
token. A token that is not (its text alone segments differently than inside the words it was learned from) is
dropped with its merge, and so is every later merge built on it; rounds repeat until all remaining ones are
reachable. The other new tokens are partial-UTF-8 steps of merge chains (a CJK character is three bytes); the
report counts them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokenizers import Tokenizer

from tokenization.atomic_write import atomic_directory, check_output
from tokenization.bpe_training import FORMAT
from tokenization.byte_level_base import ByteLevelBase, load_byte_level_base
from tokenization.byte_level_tokens import token_bytes, unreachable_token_ids, whole_text
from tokenization.errors import UserError

#: Rounds of dropping unreachable tokens; each round removes at least one merge, and one or two suffice in practice.
MAX_ROUNDS = 20


@dataclass
class BpeMergeReport:
    base: str
    base_sha256: str
    add: str
    base_vocab_size: int
    learned_merges: int
    added_tokens: int
    whole_char_tokens: int
    partial_utf8_tokens: int
    dropped_unreachable: int
    first_new_id: int
    vocab_size: int
    dropped_examples: list[str] = field(default_factory=list)


def read_learned_merges(path: Path, base: ByteLevelBase) -> list[tuple[str, str]]:
    """The merges of a ``train --kind bpe`` output, refused unless learned on this very base."""
    try:
        learned = json.loads(path.read_text(encoding="utf-8"))
        if learned.get("format") != FORMAT:
            raise ValueError(f"format is {learned.get('format')!r}, not {FORMAT!r}")
        merges = [(str(a), str(b)) for a, b in learned["merges"]]
    except FileNotFoundError:
        raise UserError(f"{path}: not found; pass the JSON file `zhllama tokenizer train --kind bpe` wrote") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a `tokenizer train --kind bpe` output ({exc})") from None
    if learned.get("base_sha256") != base.sha256:
        raise UserError(
            f"{path}: was learned on another base ({learned.get('base')}), not {base.source}; "
            "train on the base you merge into"
        )
    return merges


def used_ids(document: dict) -> list[int]:
    return list(document["model"]["vocab"].values()) + [token["id"] for token in document.get("added_tokens", [])]


def extended_document(document: dict, merges: list[tuple[str, str]], first_id: int) -> dict:
    """The base document with one token per merge (ids from ``first_id``) and the merges appended.

    ``tokenizers`` renumbers an added token that is not in the model's vocabulary to the vocabulary's size, which
    new ids would collide with (Qwen2's specials follow its vocabulary); so such tokens enter the vocabulary under
    their own ids. No merge produces them, and they are matched in text before the model runs.
    """
    vocab = dict(document["model"]["vocab"])
    for token in document.get("added_tokens", []):
        vocab.setdefault(token["content"], token["id"])
    model = dict(document["model"], vocab=vocab, merges=list(document["model"]["merges"]))
    extended = dict(document, model=model)
    as_strings = bool(model["merges"]) and isinstance(model["merges"][0], str)
    for offset, (left, right) in enumerate(merges):
        model["vocab"][left + right] = first_id + offset
        model["merges"].append(f"{left} {right}" if as_strings else [left, right])
    return extended


def without(merges: list[tuple[str, str]], dropped: set[str]) -> list[tuple[str, str]]:
    """``merges`` less those producing a dropped token and, transitively, those built on one."""
    gone = set(dropped)
    kept = []
    for left, right in merges:
        if left in gone or right in gone or left + right in gone:
            gone.add(left + right)
        else:
            kept.append((left, right))
    return kept


@dataclass
class Extension:
    """The extended tokenizer once every unreachable whole-character token is gone."""

    merges: list[tuple[str, str]]
    dropped: list[str]
    tokenizer: Tokenizer


def reachable_extension(base: ByteLevelBase, merges: list[tuple[str, str]], first_id: int) -> Extension:
    """Drops unreachable whole-character tokens (and what builds on them) until none is left."""
    dropped: list[str] = []
    for _ in range(MAX_ROUNDS):
        document = extended_document(base.document, merges, first_id)
        tokenizer = Tokenizer.from_str(json.dumps(document))
        new_ids = range(first_id, first_id + len(merges))
        unreachable = {tokenizer.id_to_token(i) for i in unreachable_token_ids(tokenizer, new_ids)}
        if not unreachable:
            return Extension(merges, dropped, tokenizer)
        kept = without(merges, unreachable)
        still = set(kept)
        dropped += [a + b for a, b in merges if (a, b) not in still]
        merges = kept
    raise UserError(f"merges still unreachable after {MAX_ROUNDS} rounds; retrain with fewer merges (--vocab_size)")


def write_directory(base: ByteLevelBase, tokenizer: Tokenizer, folder: Path) -> None:
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False, **base.config}
    (folder / "tokenizer_config.json").write_text(
        json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    roles = {k: v for k, v in base.config.items() if k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (folder / "special_tokens_map.json").write_text(
        json.dumps(roles, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def merge_bpe_extension(base: str | Path | ByteLevelBase, add: str | Path, output: str | Path) -> dict:
    """Extends the byte-level ``base`` with the merges in ``add`` and writes a tokenizer directory to ``output``."""
    loaded = load_byte_level_base(base)
    add = Path(add).expanduser()
    check_output(Path(output), [loaded.source, add], kind="tokenizer")  # refuse before the work, not after
    learned = read_learned_merges(add, loaded)
    first_id = max(used_ids(loaded.document)) + 1
    extension = reachable_extension(loaded, learned, first_id)
    merges, dropped = extension.merges, extension.dropped
    whole = sum(whole_text(token_bytes(a + b)) is not None for a, b in merges)
    report = BpeMergeReport(
        base=str(loaded.source),
        base_sha256=loaded.sha256,
        add=str(add.resolve()),
        base_vocab_size=first_id,
        learned_merges=len(learned),
        added_tokens=len(merges),
        whole_char_tokens=whole,
        partial_utf8_tokens=len(merges) - whole,
        dropped_unreachable=len(dropped),
        first_new_id=first_id,
        vocab_size=first_id + len(merges),
        dropped_examples=[whole_text(token_bytes(t)) or t for t in dropped[:10]],
    )
    with atomic_directory(Path(output), kind="tokenizer", inputs=[loaded.source, add]) as staging:
        write_directory(loaded, extension.tokenizer, staging)
        (staging / "merge_report.json").write_text(
            json.dumps(asdict(report), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return {"output": str(output), **asdict(report)}
