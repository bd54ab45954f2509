"""What every `healthscore` command shares: the typer `app`, consoles, options and `fail`.

Command modules import from here, never the other way (spaCy's `cli/_util.py`).

Every command that reads user input turns a bad file, a bad date or an
unreachable source into one clear message on stderr and exit code 2, never a
traceback; nothing is written when the input was bad.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from healthscore.actions import load_playbook
from healthscore.core.crm import SnapshotError
from healthscore.core.playbook import PlaybookError
from healthscore.core.values import parse_as_of
from healthscore.playbooks import bundled_names, find_bundled
from healthscore.sources import SOURCE_HELP, SourceError

app = typer.Typer(
    name="healthscore",
    help="Customer health scores for HubSpot, scored by a playbook YAML that CS ops edit.\n\n"
    "Start with `healthscore demo`, then `healthscore init` for a playbook of your own.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def fail(message: str, code: int = 2) -> NoReturn:
    # escaped: vendor messages carry brackets ("allowed options: [up, down, flat]")
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True)
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
    except (SourceError, SnapshotError) as exc:
        fail(str(exc))


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
        fail(str(exc))


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
