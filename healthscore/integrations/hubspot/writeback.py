"""Write-back: score, status, trend and group points as HubSpot properties.

CSMs live in HubSpot, so the score must be visible on the record itself. Each
playbook writes its own properties, prefixed with the playbook's slug
(`customer_health_score`, `customer_health_status`, `customer_health_trend`,
`customer_health_group_support`...) inside a property group named after the
playbook, so several playbooks side by side never overwrite each other.

Only values that differ from what the CRM holds are sent: the source pulled
the current values (the flow asks it for `writeback_properties(playbook)`), so
an unchanged run costs no API call at all, and HubSpot's record history is not
flooded with identical writes. Updates go in batches of at most 100 records,
HubSpot's limit, through `HubSpotConnection.call` (rate limit, retries).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from healthscore.core.crm import CrmSnapshot
from healthscore.core.playbook import Playbook
from healthscore.core.scoring import round2
from healthscore.core.text import slug as text_slug
from healthscore.core.trends import Comparison
from healthscore.core.values import as_number
from healthscore.errors import VendorError
from healthscore.integrations.hubspot.client import HubSpotConnection

BATCH_LIMIT = 100
TREND_OPTIONS = (("up", "↗️ Up"), ("down", "↘️ Down"), ("flat", "↔️ Flat"), ("new", "🆕 New"))
MAX_NAME = 100  # HubSpot's limit on internal property names


class WritebackError(VendorError):
    """HubSpot refused the properties or the updates (bad scopes, invalid values)."""


@dataclass(frozen=True)
class PropertySpec:
    """A HubSpot property definition the write-back needs."""

    name: str
    label: str
    type: str
    field_type: str
    description: str
    numeric: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def body(self, group_name: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": group_name,
            "description": self.description,
        }
        if self.options:
            body["options"] = [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(self.options)
            ]
        return body


@dataclass
class RecordUpdate:
    """The changed properties of one record."""

    id: str
    properties: dict[str, str]


@dataclass
class WritebackResult:
    """What a write-back did: records and values sent, API calls made, failures."""

    records: int = 0
    values: int = 0
    calls: int = 0
    properties_created: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- names


def slug(text: str) -> str:
    """A HubSpot internal name: lowercase ASCII letters, digits, underscores; starts with a
    letter (HubSpot's rule for property names), so "2026 plan" -> "p_2026_plan"."""
    name = text_slug(text)
    if not name or not name[0].isalpha():
        name = f"p_{name}" if name else "playbook"
    return name


def property_prefix(playbook: Playbook) -> str:
    return slug(playbook.name)


def property_group_name(playbook: Playbook) -> str:
    """The property group holding this playbook's properties (its slug)."""
    return property_prefix(playbook)


def property_specs(playbook: Playbook) -> list[PropertySpec]:
    """Score, status, trend and one property per group, in that order."""
    prefix = property_prefix(playbook)
    name = playbook.name
    specs = [
        PropertySpec(
            f"{prefix}_score",
            f"{name}: score",
            "number",
            "number",
            f"Health score computed by healthscore from the playbook {name!r}.",
            numeric=True,
        ),
        PropertySpec(
            f"{prefix}_status",
            f"{name}: status",
            "string",
            "text",
            "Status label of the score (the playbook's thresholds).",
        ),
        PropertySpec(
            f"{prefix}_trend",
            f"{name}: trend",
            "enumeration",
            "select",
            "Score compared with the newest score at least compare_days old.",
            options=TREND_OPTIONS,
        ),
    ]
    taken = {s.name for s in specs}
    for group in playbook.groups:
        base = f"{prefix}_group_{slug(group.name)}"[:MAX_NAME]
        unique, number = base, 2
        while unique in taken:
            unique = f"{base[: MAX_NAME - 4]}_{number}"
            number += 1
        taken.add(unique)
        specs.append(
            PropertySpec(
                unique,
                f"{name}: {group.name}",
                "number",
                "number",
                f"Points of the group {group.name!r} in the health score.",
                numeric=True,
            )
        )
    return specs


def writeback_properties(playbook: Playbook) -> list[str]:
    """The property names the write-back compares and writes: ask the source for them."""
    if not playbook.writeback:
        return []
    return [spec.name for spec in property_specs(playbook)]


# ---------------------------------------------------------------- what to write


def format_number(value: float) -> str:
    """Rounded to 2 decimals, no trailing `.0`: the way HubSpot shows a number."""
    rounded = round2(value)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def desired_values(playbook: Playbook, comparison: Comparison) -> dict[str, str]:
    """The property values one account should hold after this run."""
    specs = property_specs(playbook)
    values = {
        specs[0].name: format_number(comparison.rounded),
        specs[1].name: comparison.status,
        specs[2].name: comparison.trend,
    }
    for spec, group in zip(specs[3:], comparison.score.groups, strict=True):
        values[spec.name] = format_number(group.points)
    return values


def plan_updates(
    playbook: Playbook,
    comparisons: Iterable[Comparison],
    current: Mapping[str, Mapping[str, str | None]],
) -> list[RecordUpdate]:
    """Per record, only the properties whose value differs from what the CRM holds."""
    if not playbook.writeback:
        return []
    numeric = {spec.name for spec in property_specs(playbook) if spec.numeric}
    updates: list[RecordUpdate] = []
    for comparison in comparisons:
        held = current.get(comparison.id, {})
        changed = {
            name: value
            for name, value in desired_values(playbook, comparison).items()
            if not _same(held.get(name), value, name in numeric)
        }
        if changed:
            updates.append(RecordUpdate(comparison.id, changed))
    return updates


def current_values(playbook: Playbook, snapshot: CrmSnapshot) -> dict[str, dict[str, str | None]]:
    """The write-back properties each account holds in the pulled snapshot."""
    names = writeback_properties(playbook)
    return {
        record.id: {name: record.properties.get(name) for name in names}
        for record in snapshot.records(playbook.object)
    }


def _same(held: str | None, wanted: str, numeric: bool) -> bool:
    if held is None:
        return False
    if numeric:
        number = as_number(held)
        return number is not None and round2(number) == round2(float(wanted))
    return held.strip() == wanted


# ---------------------------------------------------------------- HubSpot calls


def write_back(
    connection: HubSpotConnection,
    playbook: Playbook,
    comparisons: Sequence[Comparison],
    snapshot: CrmSnapshot,
) -> WritebackResult:
    """Send the changed values; create the group and properties first if anything changed."""
    result = WritebackResult()
    updates = plan_updates(playbook, comparisons, current_values(playbook, snapshot))
    if not updates:
        return result
    result.properties_created = ensure_properties(connection, playbook, result)
    api, models = _batch_api(connection, playbook.object)
    for start in range(0, len(updates), BATCH_LIMIT):
        batch = updates[start : start + BATCH_LIMIT]
        body = models.BatchInputSimplePublicObjectBatchInput(
            inputs=[
                models.SimplePublicObjectBatchInput(id=u.id, properties=u.properties) for u in batch
            ]
        )
        try:
            response = connection.call(
                api.update, batch_input_simple_public_object_batch_input=body
            )
        except Exception as exc:
            if _status(exc) in (400, 403):
                raise WritebackError(
                    f"HubSpot refused the update of {len(batch)} {playbook.object}: {_body(exc)}"
                ) from None
            raise
        result.calls += 1
        failed = _failed_ids(response)
        result.failed.extend(failed)
        for update in batch:
            if update.id not in failed:
                result.records += 1
                result.values += len(update.properties)
    return result


def ensure_properties(
    connection: HubSpotConnection, playbook: Playbook, result: WritebackResult | None = None
) -> list[str]:
    """Create the property group and any missing property; idempotent (409 = exists)."""
    tally = result if result is not None else WritebackResult()
    properties = connection.client.crm.properties
    group = property_group_name(playbook)
    existing = connection.call(properties.core_api.get_all, playbook.object)
    tally.calls += 1
    have = {p.name for p in existing.results}
    missing = [s for s in property_specs(playbook) if s.name not in have]
    if not missing:
        return []
    from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

    _create_or_exists(
        connection,
        properties.groups_api.create,
        playbook.object,
        PropertyGroupCreate(name=group, label=playbook.name, display_order=-1),
    )
    tally.calls += 1
    created: list[str] = []
    for spec in missing:
        body = spec.body(group)
        if _create_or_exists(
            connection,
            properties.core_api.create,
            playbook.object,
            PropertyCreate(
                name=body["name"],
                label=body["label"],
                type=body["type"],
                field_type=body["fieldType"],
                group_name=group,
                description=body["description"],
                options=body.get("options"),
            ),
        ):
            created.append(spec.name)
        tally.calls += 1
    return created


def _create_or_exists(connection: HubSpotConnection, create: Any, *args: Any) -> bool:
    try:
        connection.call(create, *args)
    except Exception as exc:
        if _status(exc) == 409:
            return False
        if _status(exc) in (400, 403):
            raise WritebackError(f"HubSpot refused to create a property: {_body(exc)}") from None
        raise
    return True


def _batch_api(connection: HubSpotConnection, object_type: str) -> tuple[Any, Any]:
    """The object type's own batch API and its model module (companies, contacts)."""
    api = getattr(connection.client.crm, object_type).batch_api
    models = importlib.import_module(f"hubspot.crm.{object_type}")
    return api, models


def _failed_ids(response: Any) -> set[str]:
    """Ids of a multi-status (207) answer's errors, e.g. records deleted since the pull."""
    failed: set[str] = set()
    for error in getattr(response, "errors", None) or []:
        context = getattr(error, "context", None) or {}
        for key in ("ids", "id"):
            failed.update(str(i) for i in context.get(key, []) or [])
    return failed


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _body(exc: BaseException) -> str:
    return str(getattr(exc, "body", None) or exc)
