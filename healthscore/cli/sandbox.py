"""`healthscore sandbox`: local HubSpot, Slack and Jira APIs for manual use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthscore.cli._util import app, fail, out, user_errors


@app.command()
def sandbox(
    seed: Annotated[
        Path | None, typer.Option(help="CRM snapshot JSON to load (see `healthscore sample`).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    rate_limit: Annotated[
        str, typer.Option(help="HubSpot burst limit, requests per 10 s (e.g. 100/10s).")
    ] = "190/10s",
    faults: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of calls answered with a fault.")
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault sequence.")] = 0,
    tokens: Annotated[
        Path | None,
        typer.Option(
            help='JSON {"token": ["scope", ...]}: only these tokens, with these scopes '
            "(HubSpot and Slack); default: any token has every scope."
        ),
    ] = None,
    faults_after_write: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of applied writes answered with a dropped connection or a 5xx "
            "(the write happened, the answer is lost).",
        ),
    ] = 0.0,
    slack_channel_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Slack chat.postMessage messages per second per channel after a burst of 3 "
            "(Slack: about 1); 0 turns the limit off. Over it: HTTP 429 with Retry-After.",
        ),
    ] = 1.0,
) -> None:
    """Start local HubSpot, Slack and Jira APIs for manual use (Ctrl+C stops).

    `--source sandbox` reads from http://127.0.0.1:8765; on another port set
    HEALTHSCORE_SANDBOX_URL. Inspect calls at /_sandbox/stats.
    """
    import socket

    from healthscore.sandbox import serve

    limit_text = rate_limit.removesuffix("/10s")
    if not limit_text.isdigit() or int(limit_text) < 1:
        fail(f"--rate-limit {rate_limit!r}: write requests per 10 seconds, e.g. 190/10s")
    from healthscore.sandbox.hubspot_scopes import load_tokens

    scopes = None
    if tokens is not None:
        try:
            scopes = load_tokens(tokens)
        except ValueError as exc:
            fail(str(exc))
    with user_errors():
        if seed is not None:
            from healthscore.core.crm import CrmSnapshot

            CrmSnapshot.load(seed)  # a bad seed fails here, before anything listens
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            fail(f"port {port} on {host} is already in use; pass --port")
    if port != 8765:
        out.print(f"for --source sandbox: export HEALTHSCORE_SANDBOX_URL=http://{host}:{port}")
    serve(
        seed,
        host=host,
        port=port,
        rate_limit=int(limit_text),
        faults=faults,
        fault_seed=fault_seed,
        tokens=scopes,
        faults_after_write=faults_after_write,
        slack_channel_rate=slack_channel_rate or None,
    )
