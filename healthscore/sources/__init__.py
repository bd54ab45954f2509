"""Where CRM records come from: `--source file:PATH.json | csv:PATH | sandbox | hubspot`.

Every source returns a `CrmSnapshot`; nothing downstream knows which one ran.
"""

from __future__ import annotations

from pathlib import Path

from healthscore.core.crm import CrmSnapshot, SnapshotError
from healthscore.core.playbook import Playbook
from healthscore.errors import SourceError
from healthscore.integrations import Progress, ensure_reachable
from healthscore.integrations.hubspot.client import api_url, unreachable_hint

SOURCE_HELP = (
    "file:PATH.json (a CRM snapshot), csv:PATH (a row per account), "
    "sandbox (the local HubSpot sandbox) or hubspot (HUBSPOT_ACCESS_TOKEN)"
)

API_SOURCES = ("hubspot", "sandbox")


def is_api_source(source: str) -> bool:
    """`hubspot` and `sandbox` talk to an API (and can be written back to); files cannot."""
    kind, _, argument = source.partition(":")
    return kind in API_SOURCES and not argument


def check_reachable(source: str) -> None:
    """For an API source, raise `Unreachable` unless its address answers (no token needed).

    `healthscore run` calls it before starting Prefect, so a sandbox that is not
    running is a message within seconds, not minutes of retries.
    """
    if is_api_source(source):
        sandbox = source == "sandbox"
        ensure_reachable(api_url(sandbox), unreachable_hint(sandbox))


def wanted(playbook: Playbook) -> dict[str, set[str] | None]:
    """What a run keeps of a snapshot file: every account property (reports, actions and
    write-back read them) and, of the other object types, the properties the playbook
    reads, as the HubSpot source pulls only those."""
    only: dict[str, set[str] | None] = dict(playbook.required_properties())
    only[playbook.object] = None
    return only


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
        try:  # custom objects under the names the playbook uses
            snapshot = CrmSnapshot.load(Path(argument), only=wanted(playbook))
            snapshot = snapshot.named(playbook.required_properties())
            snapshot.check_lists(playbook.list_conditions())
            return snapshot
        except SnapshotError as exc:
            raise SourceError(str(exc)) from None
    if kind == "csv":
        from healthscore.sources.table import load_csv

        if not argument:
            raise SourceError("csv: needs a path, e.g. --source csv:customers.csv")
        from healthscore.playbooks import find_bundled

        table = load_csv(find_bundled(argument), object_type=playbook.object, id_column=id_column)
        try:  # a table holds no lists: a list condition cannot be answered from it
            table.check_lists(playbook.list_conditions())
        except SnapshotError as exc:
            raise SourceError(str(exc)) from None
        return table
    if kind in ("hubspot", "sandbox") and not argument:
        from healthscore.integrations.hubspot.pull import pull_snapshot

        return pull_snapshot(playbook, sandbox=kind == "sandbox", progress=progress)
    raise SourceError(f"unknown source {spec!r}; use {SOURCE_HELP}")
