"""Where CRM records come from: `--source file:PATH.json | csv:PATH | sandbox | hubspot`.

Every source returns a `CrmSnapshot`; nothing downstream knows which one ran.
"""

from __future__ import annotations

from pathlib import Path

from healthscore.core.crm import CrmSnapshot, SnapshotError
from healthscore.core.playbook import Playbook
from healthscore.errors import SourceError
from healthscore.integrations import Progress

SOURCE_HELP = (
    "file:PATH.json (a CRM snapshot), csv:PATH (a row per account), "
    "sandbox (the local HubSpot sandbox) or hubspot (HUBSPOT_ACCESS_TOKEN)"
)


def load_snapshot(
    spec: str,
    playbook: Playbook,
    *,
    progress: Progress | None = None,
    id_column: str | None = None,
) -> CrmSnapshot:
    """Read the records `playbook` needs from the source named by `spec`."""
    kind, _, argument = spec.partition(":")
    if kind == "file":
        if not argument:
            raise SourceError("file: needs a path, e.g. --source file:crm.json")
        try:
            return CrmSnapshot.load(Path(argument))
        except SnapshotError as exc:
            raise SourceError(str(exc)) from None
    if kind == "csv":
        from healthscore.sources.table import load_csv

        if not argument:
            raise SourceError("csv: needs a path, e.g. --source csv:customers.csv")
        from healthscore.playbooks import find_bundled

        return load_csv(find_bundled(argument), object_type=playbook.object, id_column=id_column)
    if kind in ("hubspot", "sandbox") and not argument:
        from healthscore.integrations.hubspot.pull import pull_snapshot

        return pull_snapshot(playbook, sandbox=kind == "sandbox", progress=progress)
    raise SourceError(f"unknown source {spec!r}; use {SOURCE_HELP}")
