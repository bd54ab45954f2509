"""Safe arithmetic for `derived:` properties: + - * / parentheses, numbers, names.

Parsed once into a small tree by a recursive-descent parser (never `eval`), then
evaluated per account. A missing or non-numeric input, or a division by zero,
leaves the result unknown (None), as the spec says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from healthscore.core.values import as_number

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")

Evaluator = Callable[[Mapping[str, Any]], float | None]
Node = TypeVar("Node")


class Builder(Protocol[Node]):
    """What the parser builds from: the row evaluator below, or the columnar engine's
    array arithmetic (`healthscore.core.engine`), so both read one grammar."""

    def number(self, value: float) -> Node: ...
    def name(self, name: str) -> Node: ...
    def binary(self, op: str, left: Node, right: Node) -> Node: ...
    def negate(self, operand: Node) -> Node: ...


class ExpressionError(ValueError):
    """An expression that is not arithmetic on property names and numbers."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Expression:
    source: str
    names: frozenset[str]
    evaluate: Evaluator


def parse_expression(source: str) -> Expression:
    """Parse `source`; raises ExpressionError naming the column of the problem."""
    names: set[str] = set()
    evaluate = build_expression(source, _RowBuilder(names))
    return Expression(source, frozenset(names), _finite(evaluate))


def build_expression(source: str, builder: Builder[Node]) -> Node:
    """Parse `source` into whatever `builder` makes of numbers, names and operators."""
    tokens: list[tuple[str, str, int]] = []
    for match in _TOKEN.finditer(source):
        number, name, other = match.groups()
        column = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
        if number is not None:
            tokens.append(("num", number, column))
        elif name is not None:
            tokens.append(("name", name, column))
        elif other is not None:
            if other not in "+-*/()":
                raise ExpressionError(
                    f"unexpected {other!r}: only + - * / ( ), numbers and property names",
                    column,
                )
            tokens.append(("op", other, column))
    parser = _Parser(tokens, len(source), builder)
    tree = parser.expression()
    if parser.position < len(tokens):
        _, text, column = tokens[parser.position]
        raise ExpressionError(f"unexpected {text!r} after a complete expression", column)
    return tree


def _finite(evaluate: Evaluator) -> Evaluator:
    """An overflow (1e200 * 1e200) or inf - inf is not a number either: unknown."""

    def finite(props: Mapping[str, Any]) -> float | None:
        result = evaluate(props)
        return result if result is None or math.isfinite(result) else None

    return finite


class _RowBuilder:
    """Closures over one account's properties; `names` collects the names read."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def number(self, value: float) -> Evaluator:
        return lambda _props: value

    def name(self, name: str) -> Evaluator:
        self.names.add(name)
        return lambda props: as_number(props.get(name))

    def binary(self, op: str, left: Evaluator, right: Evaluator) -> Evaluator:
        return _binary(op, left, right)

    def negate(self, operand: Evaluator) -> Evaluator:
        return lambda props: None if (v := operand(props)) is None else -v


class _Parser(Generic[Node]):
    """expression := term (('+'|'-') term)*; term := factor (('*'|'/') factor)*;
    factor := number | name | '(' expression ')' | '-' factor."""

    def __init__(self, tokens: list[tuple[str, str, int]], end: int, build: Builder[Node]) -> None:
        self.tokens = tokens
        self.position = 0
        self.end = end
        self.build = build

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def expression(self) -> Node:
        left = self.term()
        while (token := self.peek()) and token[1] in "+-" and token[0] == "op":
            self.position += 1
            left = self.build.binary(token[1], left, self.term())
        return left

    def term(self) -> Node:
        left = self.factor()
        while (token := self.peek()) and token[1] in "*/" and token[0] == "op":
            self.position += 1
            left = self.build.binary(token[1], left, self.factor())
        return left

    def factor(self) -> Node:
        token = self.peek()
        if token is None:
            raise ExpressionError(
                "the expression ends where a number or name was expected", self.end
            )
        kind, text, column = token
        self.position += 1
        if kind == "num":
            return self.build.number(float(text))
        if kind == "name":
            return self.build.name(text)
        if text == "(":
            inner = self.expression()
            closing = self.peek()
            if closing is None or closing[1] != ")":
                raise ExpressionError("a '(' is never closed", column)
            self.position += 1
            return inner
        if text == "-":
            return self.build.negate(self.factor())
        raise ExpressionError(f"unexpected {text!r} where a number or name was expected", column)


def _binary(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    def evaluate(props: Mapping[str, Any]) -> float | None:
        a = left(props)
        b = right(props)
        if a is None or b is None:
            return None
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return None if b == 0 else a / b

    return evaluate
