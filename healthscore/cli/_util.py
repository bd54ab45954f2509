"""What every `healthscore` command shares: the typer `app`, consoles, options and `fail`.

Command modules import from here, never the other way (spaCy's `cli/_util.py`).

Every command that reads user input turns a bad file, a bad date or an
unreachable source into one clear message on stderr and exit code 2, never a
traceback; nothing is written when the input was bad.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from healthscore import __version__
from healthscore.actions import load_playbook
from healthscore.core.crm import SnapshotError
from healthscore.core.playbook import PlaybookError
from healthscore.core.values import parse_as_of
from healthscore.errors import Unreachable
from healthscore.playbooks import bundled_names, find_bundled
from healthscore.sources import SOURCE_HELP, SourceError


class _Argument(TyperArgument):
    """An argument whose help shows its name (or metavar) and text, not its Python type.

    Typer 0.29 prints the annotation beside each argument (`PLAYBOOK... <list[Path]>`).
    """

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(TyperOption):
    """An option whose help shows a flag as a flag (`--dry-run`, not `--dry-run <bool>`)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.is_flag else super().display_type_rich(ctx)


def _readable(param: Any) -> Any:
    """The same parameter, its help rendered by `_Argument` or `_Option`."""
    if type(param) is TyperArgument:
        param.__class__ = _Argument
    elif type(param) is TyperOption:
        param.__class__ = _Option
    return param


class _ReadableHelp:
    """For a command or the group: arguments by name (`_Argument`), flags as flags (`_Option`)."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _readable(param)

    def get_help_option(self, ctx: Any) -> Any:
        return _readable(super().get_help_option(ctx))  # type: ignore[misc]


class _Command(_ReadableHelp, TyperCommand):
    """Every healthscore command, its help rendered by `_ReadableHelp`."""


class _Group(_ReadableHelp, TyperGroup):
    """The `healthscore` group itself (`--version`, `-h`), rendered like its commands."""


class _App(typer.Typer):
    """The typer app whose commands are `_Command`s unless a command names its own class."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or _Command, **kwargs)


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = _App(
    name="healthscore",
    cls=_Group,
    help="Customer health scores for HubSpot, scored by a playbook YAML that CS ops edit.\n\n"
    "Start with `healthscore demo`, then `healthscore init` for a playbook of your own.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        out.print(f"healthscore {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Customer health scores for HubSpot, scored by a playbook YAML that CS ops edit.

    Start with `healthscore demo`, then `healthscore init` for a playbook of your own.
    """


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


PLAYBOOK_HELP = "Playbook YAML file, or a bundled one: " + ", ".join(bundled_names()) + "."
PlaybookOption = Annotated[
    Path,
    typer.Option("--playbook", "-p", help=PLAYBOOK_HELP, show_default=False, callback=find_bundled),
]
SourceOption = Annotated[str, typer.Option("--source", "-s", help=SOURCE_HELP, show_default=False)]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Score as of this ISO 8601 date/time (UTC); default now.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False  # numbers are right-aligned on a terminal


def print_rows(title: str, columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> None:
    """Rows as a rich table on a terminal, else as tab-separated values (TSV).

    A table piped to a file or another program would be cut to the 80 columns
    rich assumes there; TSV instead is one header line of the column names and
    one line per row, whole (tabs and newlines inside a cell become spaces), and
    the title is left out. Cells are plain text: a CRM value such as `[bold]` is
    printed as written, never read as rich markup.
    """
    if not out.is_terminal:
        lines = ["\t".join(c.name for c in columns)]
        lines += ["\t".join(_tsv_cell(cell) for cell in row) for row in rows]
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title=Text(title), title_justify="left")
    for column in columns:
        table.add_column(Text(column.name), justify="right" if column.right else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out.print(table)


def _tsv_cell(cell: str) -> str:
    return " ".join(cell.replace("\t", " ").splitlines())


def fail(message: str | BaseException, code: int = 2) -> NoReturn:
    """`error: <message>` on stderr (and `hint: <hint>` when the error carries one, as
    `UserError` does), then exit `code`; the text is never read as markup."""
    err.print(Text.assemble(("error:", "bold red"), " ", str(message)))
    hint = getattr(message, "hint", "")
    if hint and hint not in str(message):
        err.print(Text.assemble(("hint:", "bold"), " ", hint))
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a message and exit code 2."""
    try:
        yield
    except PlaybookError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False)
        count = len(exc.issues)
        err.print(f"{count} problem{'s' if count != 1 else ''} found.", markup=False)
        raise typer.Exit(2) from None
    except (SourceError, SnapshotError, Unreachable) as exc:
        fail(exc)


def as_of_or_fail(value: str | None) -> datetime:
    try:
        return parse_as_of(value)
    except ValueError:
        fail(f"--as-of {value!r} is not a date; use ISO 8601, e.g. 2026-11-01 or 2026-11-01T09:00Z")


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="History database URL (default: $HEALTHSCORE_DB_URL, else SQLite in the "
        "user's data folder), e.g. postgresql+psycopg://user@host/db.",
        show_default=False,
    ),
]


@contextmanager
def run_errors() -> Iterator[None]:
    """The errors of a run a user can fix (database URL, token, refused write, an as-of in
    the past) -> exit 2."""
    from healthscore.errors import UserError
    from healthscore.history import StoreError
    from healthscore.integrations.hubspot.client import HubSpotConfigError
    from healthscore.integrations.hubspot.writeback import WritebackError

    try:
        yield
    except (StoreError, HubSpotConfigError, WritebackError, UserError) as exc:
        fail(exc)


def playbook_name(value: str | None) -> str | None:
    """A playbook name as stored; a path to a YAML file is read for its name."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        try:
            return load_playbook(path).name
        except PlaybookError as exc:
            fail(str(exc))
    return value


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    import sqlalchemy

    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it as given
        return url


def _progress_printer() -> Any:
    """A rich progress bar for sources that page through an API (stderr, only on a TTY)."""
    from healthscore.cli.progress import ProgressBar

    return ProgressBar(err)
