"""A small JQL: enough for the queries an orchestrator sends Jira.

Supports `AND`, `OR`, `NOT`, parentheses, `=`, `!=`, `~`, `!~`, `<`, `<=`, `>`,
`>=`, `in (...)`, `not in (...)`, `is [not] EMPTY`, quoted values and
`ORDER BY field [ASC|DESC], ...`. Fields are looked up by a caller-supplied
function so this module knows nothing about how issues are stored.
Errors read like Jira's so a wrong query fails the way it would in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .timefmt import parse_moment, utc_now


class JqlError(ValueError):
    """A query Jira would refuse with a 400."""


Lookup = Callable[[str], list[str] | list[datetime] | None]
Predicate = Callable[[Lookup], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)
DATE_FIELDS = {"created", "createddate", "updated", "updateddate"}
TEXT_OPS = {"~", "!~"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


@dataclass(frozen=True)
class Query:
    where: Predicate | None
    order_by: list[tuple[str, bool]]  # (field, descending)

    def matches(self, lookup: Lookup) -> bool:
        return self.where is None or self.where(lookup)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: unexpected character at position {pos}.")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(Token(kind, value))
        pos = match.end()
    return tokens


def parse(text: str, known_fields: set[str], value_check: Callable[[str, str], None]) -> Query:
    """Parse a JQL string; `value_check(field, value)` may raise for values Jira would reject."""
    parser = _Parser(tokenize(text), known_fields, value_check)
    return parser.query()


class _Parser:
    def __init__(
        self, tokens: list[Token], fields: set[str], value_check: Callable[[str, str], None]
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields
        self.value_check = value_check

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        self.pos += 1
        return token

    def query(self) -> Query:
        where = None
        token = self.peek()
        if token is not None and not token.is_word("order"):
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        token = self.peek()
        if token is not None and token.is_word("order"):
            self.take()
            if not self.take().is_word("by"):
                raise JqlError("Error in the JQL Query: expecting 'by' after 'order'.")
            while True:
                name = self.field_name()
                descending = False
                nxt = self.peek()
                if nxt is not None and nxt.is_word("asc", "desc"):
                    descending = self.take().text.lower() == "desc"
                order.append((name, descending))
                nxt = self.peek()
                if nxt is not None and nxt.kind == "punct" and nxt.text == ",":
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise JqlError(
                f"Error in the JQL Query: expecting either 'OR' or 'AND' but got "
                f"'{self.peek().text}'."  # type: ignore[union-attr]
            )
        return Query(where, order)

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while (token := self.peek()) is not None and token.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda look: any(p(look) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while (token := self.peek()) is not None and token.is_word("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda look: all(p(look) for p in parts))

    def not_expr(self) -> Predicate:
        token = self.peek()
        if token is not None and token.is_word("not"):
            self.take()
            inner = self.not_expr()
            return lambda look: not inner(look)
        if token is not None and token.kind == "punct" and token.text == "(":
            self.take()
            inner = self.or_expr()
            closing = self.take()
            if closing.text != ")":
                raise JqlError("Error in the JQL Query: expecting ')'.")
            return inner
        return self.clause()

    def field_name(self) -> str:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise JqlError(f"Error in the JQL Query: expecting a field name, got '{token.text}'.")
        name = token.text.lower()
        if name not in self.fields:
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        return name

    def value(self, name: str) -> str:
        token = self.take()
        if token.kind not in ("word", "string"):
            raise JqlError(f"Error in the JQL Query: expecting a value, got '{token.text}'.")
        self.value_check(name, token.text)
        return token.text

    def clause(self) -> Predicate:
        name = self.field_name()
        token = self.take()
        if token.is_word("is"):
            negate = False
            if (nxt := self.peek()) is not None and nxt.is_word("not"):
                self.take()
                negate = True
            if not self.take().is_word("empty", "null"):
                raise JqlError("Error in the JQL Query: expecting EMPTY or NULL after IS.")
            return lambda look: (not _values(look, name)) != negate
        if token.is_word("in") or token.is_word("not"):
            negate = token.is_word("not")
            if negate and not self.take().is_word("in"):
                raise JqlError("Error in the JQL Query: expecting 'in' after 'not'.")
            if self.take().text != "(":
                raise JqlError("Error in the JQL Query: expecting '(' after IN.")
            wanted: list[str] = []
            while True:
                wanted.append(self.value(name))
                sep = self.take()
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise JqlError("Error in the JQL Query: expecting ',' or ')'.")
            return _membership(name, wanted, negate)
        if token.kind != "op":
            raise JqlError(f"Error in the JQL Query: expecting an operator, got '{token.text}'.")
        wanted_one = self.value(name)
        return _compare(name, token.text, wanted_one)


def _values(look: Lookup, name: str) -> list[str] | list[datetime]:
    return look(name) or []


def _membership(name: str, wanted: list[str], negate: bool) -> Predicate:
    lowered = {w.lower() for w in wanted}

    def test(look: Lookup) -> bool:
        values = [str(v).lower() for v in _values(look, name)]
        hit = any(v in lowered for v in values)
        if negate:
            return bool(values) and not hit
        return hit

    return test


def relative_moment(text: str) -> datetime | None:
    """`-7d`, `2w`, `-4h` from now, or an absolute date; None when neither."""
    match = re.fullmatch(r"([-+]?)(\d+)([wdhm])", text.strip().lower())
    if match:
        sign = -1 if match.group(1) == "-" else 1
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[match.group(3)]
        return utc_now() + sign * timedelta(**{unit: int(match.group(2))})
    if text.lower() in ("now()", "now"):
        return utc_now()
    return parse_moment(text.replace("/", "-"))


def _compare(name: str, op: str, wanted: str) -> Predicate:
    if name in DATE_FIELDS:
        moment = relative_moment(wanted)
        if moment is None:
            raise JqlError(f"Date value '{wanted}' for field '{name}' is invalid.")

        def test_date(look: Lookup) -> bool:
            values = [v for v in _values(look, name) if isinstance(v, datetime)]
            ops = {
                "=": lambda v: v == moment,
                "!=": lambda v: v != moment,
                ">": lambda v: v > moment,
                ">=": lambda v: v >= moment,
                "<": lambda v: v < moment,
                "<=": lambda v: v <= moment,
            }
            if op not in ops:
                raise JqlError(f"The operator '{op}' is not supported by the '{name}' field.")
            return any(ops[op](v) for v in values)

        return test_date
    target = wanted.lower()

    def test(look: Lookup) -> bool:
        values = [str(v).lower() for v in _values(look, name)]
        if op == "=":
            return target in values
        if op == "!=":
            return bool(values) and target not in values
        if op in TEXT_OPS:
            found = any(target.strip("*") in v for v in values)
            return found if op == "~" else not found
        try:
            number = float(target)
            nums = [float(v) for v in values]
        except ValueError:
            nums, number = [], 0.0
        return any(
            {">": n > number, ">=": n >= number, "<": n < number, "<=": n <= number}[op]
            for n in nums
        )

    return test
