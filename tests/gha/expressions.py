"""GitHub Actions expressions (``${{ … }}`` and ``if:``), evaluated as GitHub documents them.

Literals (``null``, booleans, numbers, ``'strings'`` with ``''`` for a quote), property access (``a.b``, ``a['b']``,
``a[0]``; a missing property is ``null``, names are case-insensitive), ``!``, ``<`` ``<=`` ``>`` ``>=``, ``==`` ``!=``,
``&&`` ``||`` (which return one of their operands), parentheses, and the functions ``contains``, ``startsWith``,
``endsWith``, ``format``, ``join``, ``toJSON``, ``fromJSON`` and the status functions. Comparisons coerce operands of
different types to numbers and compare strings ignoring case; ``false``, ``0``, ``''``, ``null`` and NaN are falsy.
Anything else (``hashFiles``, object filters ``*``) is refused with an error naming it, never guessed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<number>0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\].,])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
EMBEDDED = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class ExpressionError(Exception):
    """An expression the evaluator cannot read or does not support."""


@dataclass(frozen=True)
class Status:
    """What the status functions answer for the job or step being evaluated."""

    failed: bool = False  # an earlier step of the job (or a needed job) failed
    cancelled: bool = False


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"cannot read {text!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def to_number(value: Any) -> float:
    """GitHub's coercion to a number."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def truthy(value: Any) -> bool:
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    return True


def to_text(value: Any) -> str:
    """How a value is written into a string (``${{ }}`` inside text, env values, inputs)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b) and not (isinstance(a, int | float) and isinstance(b, int | float)):
        if isinstance(a, dict | list) or isinstance(b, dict | list):
            return False
        return to_number(a) == to_number(b)
    if isinstance(a, str):
        return bool(a.lower() == b.lower())
    if isinstance(a, dict | list):
        return a is b
    return bool(a == b)


def _less(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() < b.lower()
    return to_number(a) < to_number(b)


def _property(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(key, str):
        lowered = key.lower()
        return next((v for k, v in value.items() if str(k).lower() == lowered), None)
    if isinstance(value, list) and not isinstance(key, str):
        index = to_number(key)
        if not math.isnan(index) and index.is_integer() and 0 <= index < len(value):
            return value[int(index)]
    return None


def _format(template: str, *args: Any) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        return to_text(args[int(match.group(1))])

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", one, template)


def _contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(_equal(element, item) for element in search)
    return to_text(item).lower() in to_text(search).lower()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": _contains,
    "startswith": lambda s, p: to_text(s).lower().startswith(to_text(p).lower()),
    "endswith": lambda s, p: to_text(s).lower().endswith(to_text(p).lower()),
    "format": lambda t, *a: _format(to_text(t), *a),
    "join": lambda items, sep=",": (
        to_text(sep).join(to_text(i) for i in items) if isinstance(items, list) else to_text(items)
    ),
    "tojson": lambda v: json.dumps(v, indent=2),
    "fromjson": lambda t: json.loads(to_text(t)),
}


class _Parser:
    """Precedence climbing over the token list; evaluates as it parses (both branches of && and || are read)."""

    def __init__(self, text: str, context: Mapping[str, Any], status: Status) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.context = context
        self.status = status
        self.used_status = False

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ExpressionError(f"{self.text!r} ends too early")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"{self.text!r}: expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.position != len(self.tokens):
            raise ExpressionError(f"{self.text!r}: unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.equality()
        while self.peek() == "&&":
            self.take()
            right = self.equality()
            value = right if truthy(value) else value
        return value

    def equality(self) -> Any:
        value = self.comparison()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.comparison()
            value = _equal(value, right) == (op == "==")
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek() in ("<", "<=", ">", ">="):
            op = self.take()[1]
            right = self.unary()
            a, b = (value, right) if op in ("<", "<=") else (right, value)
            value = _less(a, b) or (op in ("<=", ">=") and _equal(a, b))
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name":
                    raise ExpressionError(f"{self.text!r}: {name!r} after '.' is not supported (object filters)")
                value = _property(value, name)
            else:
                key = self.or_()
                self.take("]")
                value = _property(value, key)
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "number":
            return to_number(text)
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise ExpressionError(f"{self.text!r}: unexpected {text!r}")
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        if self.peek() == "(":
            return self.call(lowered)
        return _property(self.context, text)

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.or_())
            if self.peek() == ",":
                self.take()
        self.take(")")
        if name in STATUS_FUNCTIONS:
            self.used_status = True
            return {
                "success": not self.status.failed and not self.status.cancelled,
                "failure": self.status.failed,
                "always": True,
                "cancelled": self.status.cancelled,
            }[name]
        if name not in FUNCTIONS:
            raise ExpressionError(f"{self.text!r}: the function {name}() is not supported here")
        return FUNCTIONS[name](*args)


def evaluate(text: str, context: Mapping[str, Any], status: Status = Status()) -> Any:
    """The value of one expression (the text between ``${{`` and ``}}``)."""
    return _Parser(text, context, status).parse()


def interpolate(text: Any, context: Mapping[str, Any]) -> str:
    """``text`` with every ``${{ expression }}`` replaced by its value as text."""
    if not isinstance(text, str):
        return to_text(text)
    return EMBEDDED.sub(lambda m: to_text(evaluate(m.group(1), context)), text)


def condition(text: Any, context: Mapping[str, Any], status: Status) -> bool:
    """Whether a job or step with ``if: text`` runs. Without a status function GitHub adds ``success() &&``."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return not status.failed and not status.cancelled
    if isinstance(text, bool):
        return text and not status.failed and not status.cancelled
    expression = str(text).strip()
    whole = EMBEDDED.fullmatch(expression)
    if whole:
        expression = whole.group(1)
    elif "${{" in expression:  # text around an expression: a non-empty string, always true (a classic mistake)
        return bool(interpolate(expression, context))
    parser = _Parser(expression, context, status)
    value = truthy(parser.parse())
    if not parser.used_status:
        value = value and not status.failed and not status.cancelled
    return value
