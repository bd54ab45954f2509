"""The action kinds: one module each, and this registry, the only list of them.

A new kind is one module here (a subclass of `base.ActionKind`: its keys' JSON
Schema, `render`, `send`) plus one line in `REGISTRY`; validation, the
published schema, planning and dispatching all read the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthscore.actions.kinds.base import ActionKind
from healthscore.actions.kinds.hubspot_list import HubSpotList
from healthscore.actions.kinds.hubspot_task import HubSpotTask
from healthscore.actions.kinds.jira import Jira
from healthscore.actions.kinds.slack import Slack

REGISTRY: Mapping[str, ActionKind] = {
    kind.name: kind for kind in (Slack(), Jira(), HubSpotList(), HubSpotTask())
}
KIND_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    name: kind.schema for name, kind in REGISTRY.items()
}
"""`do:` name -> JSON Schema of the kind's keys, what the core validator takes."""
