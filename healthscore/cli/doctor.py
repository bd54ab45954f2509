"""`healthscore doctor`: setup mistakes found before the first run, all at once."""

from __future__ import annotations

from typing import Annotated

import typer

from healthscore.cli._util import (
    PlaybookOption,
    SourceOption,
    app,
    err,
    fail,
    out,
    run_errors,
    user_errors,
)


def print_problems(problems: list[str]) -> None:
    """`problem: <line>` each, then the count, on stderr; never read as markup."""
    for line in problems:
        err.print(f"problem: {line}", markup=False)
    err.print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found.", markup=False)


@app.command()
def doctor(
    playbook: PlaybookOption,
    source: SourceOption = "hubspot",
    properties_only: Annotated[
        bool, typer.Option("--properties-only", help="Skip the token-scope check.")
    ] = False,
) -> None:
    """Check the setup a playbook needs, and list every problem (exit 2).

    HubSpot: the token's scopes and the properties the playbook reads and writes.
    Slack (when an action posts): the token, its scopes, the channels and whether
    the bot can post there. Jira (when an action opens issues): each project and
    issue type.
    """
    from healthscore.actions import load_playbook
    from healthscore.actions.config import action_settings
    from healthscore.actions.preflight import SetupCheck
    from healthscore.sources.cached import is_api_source

    with user_errors(), run_errors():
        book = load_playbook(playbook)
        if not is_api_source(source):
            fail(f"--source {source}: doctor checks a HubSpot portal (hubspot or sandbox)")
        check = SetupCheck(source, action_settings(source))
        problems = check.problems(book, scopes=not properties_only)
    for line in check.notes:
        out.print(f"note: {line}", markup=False)
    if problems:
        print_problems(problems)
        raise typer.Exit(2)
    out.print(f"{playbook}: setup OK on {source}", markup=False)
