"""Loading, checking and serializing SentencePiece ``ModelProto`` files.

transformers 5 no longer exposes a SentencePiece processor (``LlamaTokenizer`` has no ``sp_model``), so the
tokenizer code edits the protobuf that ``sentencepiece`` ships (``sentencepiece_model_pb2``) directly. Every
entry point goes through :func:`load_model_proto`, so a wrong path or a file that is not a SentencePiece model
is refused with a message that names the file and the fix instead of a protobuf traceback.
"""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm
from google.protobuf.message import DecodeError
from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from tokenization.errors import UserError

ModelProto = sp_pb2.ModelProto
SentencePiece = sp_pb2.ModelProto.SentencePiece

NORMAL = SentencePiece.NORMAL
UNKNOWN = SentencePiece.UNKNOWN
CONTROL = SentencePiece.CONTROL
USER_DEFINED = SentencePiece.USER_DEFINED
BYTE = SentencePiece.BYTE


MODEL_TYPE_NAMES = {v: k for k, v in sp_pb2.TrainerSpec.ModelType.items()}


class NotASentencePieceModel(UserError, ValueError):
    """The file exists but does not hold a SentencePiece model."""


def resolve_model_file(path: str | Path) -> Path:
    """Accepts a ``.model`` file or a directory holding ``tokenizer.model`` (a Hugging Face tokenizer dir)."""
    path = Path(path).expanduser()
    if path.is_dir():
        inner = path / "tokenizer.model"
        if inner.is_file():
            return inner
        hint = " (it holds a tokenizer.json only: a SentencePiece tokenizer.model is needed)" if (
            path / "tokenizer.json"
        ).is_file() else ""
        raise NotASentencePieceModel(
            f"{path}: directory has no tokenizer.model{hint}; pass a SentencePiece .model file or a directory "
            "that contains one (e.g. the original LLaMA checkpoint's tokenizer.model)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found; pass the path of a SentencePiece .model file")
    return path


def load_model_proto(path: str | Path) -> ModelProto:
    """Parses a SentencePiece model, refusing files that are not one (tokenizer.json, text, truncated files)."""
    file = resolve_model_file(path)
    data = file.read_bytes()
    fix = "pass a SentencePiece .model file (the tokenizer.model of a LLaMA-family checkpoint)"
    if data[:1] in (b"{", b"[") or file.suffix == ".json":
        raise NotASentencePieceModel(
            f"{file}: this is a JSON file (a Hugging Face tokenizer.json?), not a SentencePiece model; {fix}"
        )
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except DecodeError as exc:
        raise NotASentencePieceModel(f"{file}: not a SentencePiece model ({exc}); {fix}") from None
    if len(proto.pieces) == 0:
        raise NotASentencePieceModel(f"{file}: parses as protobuf but holds no pieces; {fix}")
    try:
        spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
    except RuntimeError as exc:
        raise NotASentencePieceModel(f"{file}: SentencePiece refuses to load it ({exc}); {fix}") from None
    return proto


def model_type_name(proto: ModelProto) -> str:
    return MODEL_TYPE_NAMES.get(proto.trainer_spec.model_type, str(proto.trainer_spec.model_type))


def processor(proto: ModelProto, add_dummy_prefix: bool | None = None) -> spm.SentencePieceProcessor:
    """A SentencePiece processor for an in-memory proto, optionally with the dummy prefix switched."""
    if add_dummy_prefix is not None and proto.normalizer_spec.add_dummy_prefix != add_dummy_prefix:
        proto = copy_proto(proto)
        proto.normalizer_spec.add_dummy_prefix = add_dummy_prefix
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def copy_proto(proto: ModelProto) -> ModelProto:
    clone = ModelProto()
    clone.CopyFrom(proto)
    return clone


def piece_index(proto: ModelProto) -> dict[str, int]:
    return {p.piece: i for i, p in enumerate(proto.pieces)}


def write_model(proto: ModelProto, path: Path) -> None:
    path.write_bytes(proto.SerializeToString())
