"""Prompt templates for instruction tuning and generation.

Training and generation must wrap an instruction in exactly the same text, so both read it from here.
``alpaca_v1`` is Chinese-Alpaca's training template (trailing space included: the released models expect the
answer to follow ``"### Response: "``); ``llama2_zh`` is Chinese-Alpaca-2's Llama-2 chat template with its
default system prompt. Anything else containing ``{instruction}`` is taken as a user template string.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from tokenization.errors import UserError

ALPACA_V1 = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response: "
)

LLAMA2_ZH = "[INST] <<SYS>>\n{system_prompt}\n<</SYS>>\n\n{instruction} [/INST]"

#: Chinese-Alpaca-2's default system prompt.
LLAMA2_ZH_SYSTEM_PROMPT = "You are a helpful assistant. 你是一个乐于助人的助手。"

#: Inputs that the Chinese Alpaca data uses to mean "no input"; they are dropped, not appended.
PLACEHOLDER_INPUTS: frozenset[str] = frozenset({"无输入", "Noinuput", "<noinput>"})


@dataclass(frozen=True)
class PromptTemplate:
    """A template with an ``{instruction}`` slot and, optionally, a ``{system_prompt}`` slot."""

    name: str
    text: str
    system_prompt: str = ""

    def __post_init__(self) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None}
        if "instruction" not in fields:
            raise UserError(
                f"prompt template {self.name!r} has no {{instruction}} slot: {self.text!r}. "
                f"Use one of {', '.join(BUILTIN_TEMPLATES)} or a string containing {{instruction}}."
            )
        unknown = fields - {"instruction", "system_prompt"}
        if unknown:
            raise UserError(
                f"prompt template {self.name!r} has unknown slots {sorted(unknown)}; only {{instruction}} and "
                "{system_prompt} are filled (write a literal brace as {{ or }})"
            )

    def split(self, instruction: str) -> tuple[str, str, str]:
        """Returns (text before the instruction, the instruction, text after it) so callers can truncate
        the instruction alone while keeping the template's response marker."""
        head, tail = self.text.split("{instruction}", 1)
        fill = {"system_prompt": self.system_prompt}
        return head.format_map(fill), instruction, tail.format_map(fill)

    def format(self, instruction: str) -> str:
        return "".join(self.split(instruction))


def join_instruction(instruction: str, input_: str | None) -> str:
    """Chinese-Alpaca's rule: a real input goes on a new line after the instruction; placeholders count as empty."""
    if input_ is None or is_placeholder_input(input_):
        return instruction
    return f"{instruction}\n{input_}"


def is_placeholder_input(input_: str) -> bool:
    return not input_.strip() or input_.strip() in PLACEHOLDER_INPUTS


BUILTIN_TEMPLATES: dict[str, tuple[str, str]] = {
    "alpaca_v1": (ALPACA_V1, ""),
    "llama2_zh": (LLAMA2_ZH, LLAMA2_ZH_SYSTEM_PROMPT),
}


def get_template(name_or_text: str, system_prompt: str | None = None) -> PromptTemplate:
    """A built-in template by name, or a user template string (anything containing ``{instruction}``).

    ``system_prompt`` overrides the built-in default (only meaningful for templates with that slot).
    """
    if name_or_text in BUILTIN_TEMPLATES:
        text, default_system = BUILTIN_TEMPLATES[name_or_text]
        return PromptTemplate(name_or_text, text, default_system if system_prompt is None else system_prompt)
    if "{instruction}" not in name_or_text:
        raise UserError(
            f"unknown prompt template {name_or_text!r}: use one of {', '.join(BUILTIN_TEMPLATES)} "
            "or a template string containing {instruction}"
        )
    return PromptTemplate("custom", name_or_text, system_prompt or "")
