"""`healthscore doctor`: setup mistakes found before the first run, all at once."""

from __future__ import annotations

from typing import Annotated

import typer

from healthscore.cli._util import PlaybookOption, SourceOption, app, err, fail, out, user_errors


def hubspot_problems(playbook_path: str, source: str, *, scopes: bool = True) -> list[str]:
    """Every HubSpot problem of the playbook on this source (token scopes, properties)."""
    from healthscore.core.playbook import load_playbook
    from healthscore.integrations.hubspot.checks import (
        portal_properties,
        property_problems,
        scope_problems,
        token_scopes,
    )
    from healthscore.sources.cached import connect_source, is_api_source

    playbook = load_playbook(playbook_path)
    if not is_api_source(source):
        fail(f"--source {source}: doctor checks a HubSpot portal (hubspot or sandbox)")
    connection = connect_source(source)
    problems: list[str] = []
    if scopes:
        try:
            problems += scope_problems(playbook, token_scopes(connection))
        except PermissionError as exc:
            return [str(exc)]
    readable = [t for t in playbook.required_properties() if t]
    try:
        definitions = portal_properties(connection, readable)
    except Exception as exc:  # a missing schema read scope: reported above, keep the rest
        status = getattr(exc, "status", None)
        if status not in (401, 403):
            raise
        return [*problems, f"cannot read property definitions (HubSpot answered {status})"]
    return problems + property_problems(playbook, definitions)


@app.command()
def doctor(
    playbook: PlaybookOption,
    source: SourceOption = "hubspot",
    properties_only: Annotated[
        bool, typer.Option("--properties-only", help="Skip the token-scope check.")
    ] = False,
) -> None:
    """Check the HubSpot token's scopes and the playbook's properties in the portal (exit 2)."""
    with user_errors():
        problems = hubspot_problems(str(playbook), source, scopes=not properties_only)
    for line in problems:
        err.print(f"problem: {line}", markup=False)
    if problems:
        err.print(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found.", markup=False
        )
        raise typer.Exit(2)
    out.print(f"{playbook}: HubSpot setup OK on {source}", markup=False)
