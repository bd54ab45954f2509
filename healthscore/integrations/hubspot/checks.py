"""`healthscore doctor`'s HubSpot checks: the token's scopes and the portal's properties.

Setup mistakes otherwise surface mid-run as a 403 or a silently empty score: a
token without the task scope, a typo'd property (`last_login_dat`), a date
operator on a text property, a write-back property an admin changed. Each check
returns problems as plain lines; the caller lists every one and exits 2.

Scopes are HubSpot's own names from its public OpenAPI collection
(github.com/HubSpot/HubSpot-public-api-spec-collection, `PublicApiSpecs/CRM/...`):
each object type's `<type>.json` (`security`), where tasks, notes, calls,
meetings and emails take the *contacts* scopes; properties from
`Properties/.../properties.json`; lists from `Lists/.../lists.json`; owners from
`Crm Owners/.../crmOwners.json`. The token's scopes come from HubSpot's private
app token-info endpoint (`POST /oauth/v2/private-apps/get/access-token-info`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from healthscore.core.conditions import DATE_OPERATORS, NUMERIC_OPERATORS
from healthscore.core.crm import is_custom_object
from healthscore.core.playbook import Condition, Playbook
from healthscore.integrations.hubspot.client import HubSpotConnection
from healthscore.integrations.hubspot.writeback import owning_playbook, property_specs

ENGAGEMENTS = frozenset({"tasks", "notes", "calls", "meetings", "emails"})
DATE_TYPES = frozenset({"date", "datetime"})
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"


def object_scope(object_type: str, access: str) -> str:
    """The scope HubSpot's spec names for reading (`read`) or writing (`write`) a type."""
    if object_type == "tickets":
        return "tickets"
    if is_custom_object(object_type):  # Schemas/.../schemas.json and the objects API
        return f"crm.objects.custom.{access}"
    if object_type in ENGAGEMENTS:
        return f"crm.objects.contacts.{access}"
    return f"crm.objects.{object_type}.{access}"


def needed_scopes(playbook: Playbook, *, writeback: bool = True) -> dict[str, str]:
    """Scope -> what needs it, for one playbook (the README's table, per feature)."""
    needs: dict[str, str] = {}
    for object_type in playbook.required_properties():
        if object_type:
            needs.setdefault(object_scope(object_type, "read"), f"reading {object_type}")
    needs.setdefault("crm.objects.owners.read", "owner names and emails")
    if playbook.list_conditions():
        needs.setdefault("crm.lists.read", "list-membership conditions")
    schemas = "custom" if is_custom_object(playbook.object) else playbook.object
    if is_custom_object(playbook.object):
        needs.setdefault("crm.schemas.custom.read", f"the custom object {playbook.object}")
    if playbook.writeback and writeback:
        needs.setdefault(object_scope(playbook.object, "write"), "write-back")
        needs.setdefault(f"crm.schemas.{schemas}.read", "write-back (property definitions)")
        needs.setdefault(f"crm.schemas.{schemas}.write", "write-back (creating its properties)")
    for action in playbook.actions:
        if action.kind == "hubspot_list":
            needs.setdefault("crm.lists.read", f"action {action.name!r}")
            needs.setdefault("crm.lists.write", f"action {action.name!r}")
        if action.kind == "hubspot_task":
            needs.setdefault("crm.objects.contacts.read", f"action {action.name!r} (task search)")
            needs.setdefault("crm.objects.contacts.write", f"action {action.name!r} (tasks)")
    return needs


def token_scopes(connection: HubSpotConnection) -> frozenset[str]:
    """The token's scopes, from HubSpot's token-info endpoint."""
    response = connection.call(
        connection.client.api_request,
        {
            "method": "POST",
            "path": TOKEN_INFO_PATH,
            "body": {"tokenKey": connection.token},
            "base_url": connection.base_url.rstrip("/"),
        },
    )
    if response.status_code == 401:
        raise PermissionError("the HubSpot token is not valid (HubSpot answered 401)")
    response.raise_for_status()
    return frozenset(str(s) for s in response.json().get("scopes") or [])


def scope_problems(
    playbook: Playbook, granted: Iterable[str], *, writeback: bool = True
) -> list[str]:
    """One line per scope the playbook needs and the token lacks.

    `writeback=False` leaves out the write-back's own scopes: the write-back
    copes without them (it reports what HubSpot refused and writes the rest),
    so `run` does not stop for them; `doctor` lists them.
    """
    have = set(granted)
    return [
        f"HubSpot token lacks the scope {scope} (needed for {why})"
        for scope, why in sorted(needed_scopes(playbook, writeback=writeback).items())
        if scope not in have
    ]


EXPORT_SCOPE = "crm.export"


def scope_notes(granted: Iterable[str]) -> list[str]:
    """What the token's scopes cost without stopping anything: one line each.

    Without `crm.export` the pull reads every account's associations with the v4
    batch read instead of one CRM export (`hubspot.exports`): correct, but a call per
    1,000 accounts and related type on every run.
    """
    if EXPORT_SCOPE in set(granted):
        return []
    return [
        f"the HubSpot token has no {EXPORT_SCOPE}: each run reads every account's "
        "associations with the v4 batch read (a call per 1,000 accounts and related "
        "type) instead of one export of 3 calls; add the scope to the app to save them"
    ]


def _conditions(playbook: Playbook) -> Iterable[tuple[str, Condition]]:
    """(object type, condition) for every condition the playbook evaluates."""
    for option in playbook.segment_options():
        for condition in option:
            yield playbook.object, condition
    for action in playbook.actions:
        for condition in action.where:
            yield playbook.object, condition
    for group in playbook.groups:
        for rule in group.rules:
            other = rule.event or rule.associated or playbook.object
            for condition in rule.when:
                yield playbook.object, condition
            for condition in rule.where:
                yield other, condition


def property_problems(
    playbook: Playbook,
    definitions: Mapping[str, Mapping[str, Any]],
    *,
    writeback: bool = True,
    enriched: Collection[str] = (),
) -> list[str]:
    """Missing properties (with a "did you mean"), operators that do not fit, write-back clashes.

    `definitions`: object type -> property name -> HubSpot's definition (`type`,
    `label`, `description`). A write-back property another playbook writes (its
    description names that playbook, `owning_playbook`) is always a problem;
    one of the wrong type only with `writeback` (the write-back leaves its values
    out and reports it, so `run` need not stop for it). `enriched`: the account
    properties the playbook's `enrich:` entries bring (their columns), which
    HubSpot need not have.
    """
    problems: list[str] = []
    derived = {name for name, _ in playbook.derived}
    for object_type, names in sorted(playbook.required_properties().items()):
        known = definitions.get(object_type)
        if not object_type or known is None:
            continue
        brought = set(enriched) if object_type == playbook.object else set()
        for name in sorted(names - derived - brought):
            if name in known:
                continue
            line = f"{object_type}: property {name} does not exist in HubSpot"
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
            problems.append(line + (f"; did you mean `{close[0]}`?" if close else ""))
    seen: set[tuple[str, str, str]] = set()
    for object_type, condition in _conditions(playbook):
        if condition.in_list is not None:
            continue
        if object_type == playbook.object and condition.property in enriched:
            continue  # the entry's value, not HubSpot's property, is what the rule reads
        definition = definitions.get(object_type, {}).get(condition.property)
        key = (object_type, condition.property, condition.op)
        if definition is None or key in seen:
            continue
        seen.add(key)
        kind = str(definition.get("type"))
        if condition.op in DATE_OPERATORS and kind not in DATE_TYPES:
            problems.append(
                f"{object_type}: {condition.op} needs a date, but {condition.property} is "
                f"of type {kind}"
            )
        if condition.op in NUMERIC_OPERATORS and kind not in ("number", *DATE_TYPES):
            problems.append(
                f"{object_type}: {condition.op} compares numbers, but {condition.property} is "
                f"of type {kind}"
            )
    if playbook.writeback:
        held = definitions.get(playbook.object, {})
        for spec in property_specs(playbook):
            definition = held.get(spec.name)
            if definition is None:
                continue
            owner = owning_playbook(definition.get("description"))
            if owner is not None and owner != playbook.name:
                problems.append(
                    f"{playbook.object}: write-back property {spec.name} belongs to the "
                    f"playbook {owner!r} (its description says so); give this one its own "
                    "names with `writeback: {prefix: ...}`"
                )
            elif writeback and str(definition.get("type")) != spec.type:
                problems.append(
                    f"{playbook.object}: write-back property {spec.name} exists with type "
                    f"{definition.get('type')}, not {spec.type}"
                )
    return problems


def portal_properties(
    connection: HubSpotConnection, object_types: Iterable[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Object type -> property name -> definition, one `GET /crm/v3/properties/{type}` each."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    core = connection.client.crm.properties.core_api
    for object_type in sorted(t for t in object_types if t):
        found = connection.call(core.get_all, object_type)
        out[object_type] = {
            p.name: {"type": p.type, "label": p.label, "description": p.description}
            for p in found.results
        }
    return out
