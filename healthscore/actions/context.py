"""The template context of an action: the variables of `templates.TEMPLATE_VARIABLES`.

Every text value that comes from the CRM (and, to be safe, from the playbook) is
escaped for the target before it enters the context (`escape.py`), so templates
stay filter-free: `{{ account.name }}` is already inert in a Slack message and in
a Jira description. A property the account does not have renders as empty text
instead of failing the run: `healthscore validate` already rejects misspelt
variables, and a CRM property can legitimately be empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from healthscore.core.crm import Owner
from healthscore.core.symbols import TREND_ARROWS
from healthscore.core.symbols import chip as status_chip
from healthscore.core.trends import Comparison

HUBSPOT_APP = "https://app.hubspot.com"
RECORD_PATHS = {"companies": "company", "contacts": "contact"}


class Fields(dict[str, Any]):
    """A dict whose missing keys read as empty text (`account.renewal_date` when unset)."""

    def __missing__(self, key: str) -> str:
        return ""


def record_url(
    portal_id: str, object_type: str, record_id: str, object_type_id: str | None = None
) -> str:
    """The record in HubSpot's app: `https://app.hubspot.com/contacts/{portal}/company/{id}`
    for a company or contact, `.../record/{objectTypeId}/{id}` for any other object
    (`object_type_id`, e.g. a custom object's `2-1234567`; HubSpot's record URLs)."""
    path = RECORD_PATHS.get(object_type) or f"record/{object_type_id or object_type}"
    return f"{HUBSPOT_APP}/contacts/{portal_id}/{path}/{record_id}"


def template_context(
    comparison: Comparison,
    *,
    owner: Owner | None,
    playbook: str,
    action: str,
    url: str,
    escape: Callable[[str], str],
) -> dict[str, Any]:
    """The variables a template sees, every text value escaped with `escape`."""
    score = comparison.score

    def text(value: Any) -> Any:
        return escape(value) if isinstance(value, str) else value

    account = Fields(
        {escape(k): text(v) if v is not None else "" for k, v in score.properties.items()}
    )
    account["id"] = escape(score.id)
    account["name"] = escape(score.name)
    owner_fields = Fields(
        {
            "id": escape(owner.id) if owner else escape(score.owner_id or ""),
            "name": escape(owner.display_name) if owner else "",
            "email": escape(owner.email or "") if owner else "",
        }
    )
    return {
        "account": account,
        "score": comparison.rounded,
        "status": escape(score.status),
        "color": escape(score.color),
        "status_chip": status_chip(score.color),
        "previous_score": comparison.previous,
        "previous_status": text(comparison.previous_status),
        "delta": comparison.delta,
        "trend": comparison.trend,
        "trend_arrow": TREND_ARROWS[comparison.trend],
        "groups": Fields({escape(k): v for k, v in score.group_points().items()}),
        "owner": owner_fields,
        "playbook": escape(playbook),
        "action": escape(action),
        "url": url,
    }


def group_drops(
    now: Mapping[str, float], before: Mapping[str, float], limit: int = 3
) -> list[tuple[str, float, float]]:
    """The groups that lost the most points since the previous snapshot, biggest loss first."""
    drops = [
        (name, float(before[name]), float(points))
        for name, points in now.items()
        if name in before and float(points) < float(before[name])
    ]
    drops.sort(key=lambda d: (d[2] - d[1], d[0]))
    return drops[:limit]
