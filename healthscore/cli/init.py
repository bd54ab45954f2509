"""`healthscore init`: a starter folder that works where it is written, from any install.

Writes three files into DIR (default: the current folder):

    playbook.yaml          a bundled template (healthscore/playbooks/templates/), its
                           first line `# yaml-language-server: $schema=playbook.schema.json`
    playbook.schema.json   the JSON Schema (the text of `healthscore schema`), so editors
                           autocomplete without a checkout or a network
    prefect.yaml           the user's own Prefect deployment of that playbook: the daily
                           scoring run and the Monday leadership digest

Existing files are never overwritten unless `--force` is given; when any of the three
exists, nothing is written and the command exits 2 naming them (issue 14).
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer

from healthscore.cli._util import app, fail, out
from healthscore.files import atomic_write
from healthscore.playbooks import DEFAULT_TEMPLATE, SCHEMA_FILE, TEMPLATES

PLAYBOOK_FILE = "playbook.yaml"
SCHEMA_NAME = "playbook.schema.json"
PREFECT_FILE = "prefect.yaml"
SCHEMA_LINE = "# yaml-language-server: $schema="

_TEMPLATE_LIST = "\n\n".join(f"[bold]{name}[/]: {line}" for name, (_, line) in TEMPLATES.items())


@app.command(
    help="Write a starter playbook, its JSON Schema and a prefect.yaml into DIR.\n\n"
    "Then: `healthscore validate playbook.yaml`, `healthscore score -p playbook.yaml "
    "-s hubspot`, and `prefect deploy --all` in DIR for the daily schedule. The format "
    "is docs/playbook.md in the repository.\n\nTemplates (--template):\n\n" + _TEMPLATE_LIST
)
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder to write into (created if missing).")
    ] = Path("."),
    template: Annotated[
        str,
        typer.Option("--template", "-t", help="Starter playbook: " + ", ".join(TEMPLATES) + "."),
    ] = DEFAULT_TEMPLATE,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite playbook.yaml, its schema, prefect.yaml.")
    ] = False,
) -> None:
    if template not in TEMPLATES:
        fail(f"--template {template!r} is not one of: {', '.join(TEMPLATES)}")
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} is a file, not a folder")
    source, _ = TEMPLATES[template]
    files = {
        PLAYBOOK_FILE: starter_playbook(source.read_text(encoding="utf-8")),
        SCHEMA_NAME: SCHEMA_FILE.read_text(encoding="utf-8"),
        PREFECT_FILE: prefect_yaml(directory.resolve(), template),
    }
    existing = [directory / name for name in files if (directory / name).exists()]
    if existing and not force:
        fail(
            "not overwriting "
            + ", ".join(str(p) for p in existing)
            + "; pass --force to replace, or choose another folder"
        )
    try:
        for name, text in files.items():
            atomic_write(directory / name, text)
    except OSError as exc:
        fail(f"cannot write into {directory}: {exc}")
    for name in files:
        out.print(f"wrote {directory / name}", markup=False)
    out.print(
        f"\nNext:\n  healthscore validate {directory / PLAYBOOK_FILE}\n"
        f"  healthscore score -p {directory / PLAYBOOK_FILE} -s hubspot"
        "   # with HUBSPOT_ACCESS_TOKEN set",
        markup=False,
    )


def starter_playbook(template: str) -> str:
    """The template with its `$schema` line pointing at the schema written beside it.

    Bundled templates point into the package (`../../data/playbook.schema.json`);
    written elsewhere that path would dangle, so the first line is replaced (or
    added when a template has none).
    """
    lines = template.splitlines(keepends=True)
    own = f"{SCHEMA_LINE}{SCHEMA_NAME}\n"
    if lines and lines[0].startswith(SCHEMA_LINE):
        return own + "".join(lines[1:])
    return own + template


def prefect_yaml(directory: Path, template: str) -> str:
    """A prefect.yaml deploying this folder's playbook with the installed flows.

    The entrypoints are module paths (`flows.score_accounts.score_accounts`), which
    Prefect imports from the installed package, so the deployment needs no checkout;
    the pull step makes the worker run in DIR, where `playbook.yaml` is. The source
    is HubSpot except for the demo template, whose properties only the sandbox has.
    """
    source = "sandbox" if template == "demo" else "hubspot"
    digest_source = "sandbox" if template == "demo" else "slack"
    project = re.sub(r"[^a-z0-9]+", "-", directory.name.lower()).strip("-") or "health"
    return f"""\
# Prefect deployments of {PLAYBOOK_FILE}, written by `healthscore init`. In this folder:
#
#   prefect server start                                # UI at http://127.0.0.1:4200
#   export PREFECT_API_URL=http://127.0.0.1:4200/api
#   prefect work-pool create local --type process
#   prefect --no-prompt deploy --all
#   prefect worker start --pool local
#
# The worker runs the flows installed with healthscore, in this folder. HubSpot token:
# HUBSPOT_ACCESS_TOKEN in the worker's environment, or a Secret block named
# `hubspot-access-token`; Slack: SLACK_BOT_TOKEN or `slack-bot-token`. History:
# HEALTHSCORE_DB_URL in the worker's environment, or a `db_url` parameter below.
name: healthscore-{project}
prefect-version: {version("prefect")}

build: null
push: null
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: {json.dumps(str(directory))}

deployments:
  - name: daily-customer-health
    description: Score every account with {PLAYBOOK_FILE}, keep the history, write back and act.
    entrypoint: flows.score_accounts.score_accounts
    tags: [healthscore]
    parameters:
      playbook_path: {PLAYBOOK_FILE}
      source: {source}
      dry_run: false
    schedules:
      - cron: "0 6 * * *"
        timezone: UTC          # an IANA name, e.g. Europe/Berlin
        active: true
    work_pool:
      name: local
      work_queue_name: default

  - name: weekly-leadership-digest
    description: Post the weekly customer-health digest to the leadership Slack channel.
    entrypoint: flows.weekly_digest.weekly_digest
    tags: [healthscore]
    parameters:
      playbook: {PLAYBOOK_FILE}
      channel: "#cs-leadership"
      source: {digest_source}
    schedules:
      - cron: "30 7 * * 1"
        timezone: UTC
        active: true
    work_pool:
      name: local
      work_queue_name: default
"""
