"""The action kinds: one module each, found here, the only list of them.

A new kind is one module in this folder (a subclass of `base.ActionKind`: its keys'
JSON Schema, `render`, `send`) plus its tests; nothing else names it. Validation,
the published schema (`healthscore schema`), planning and dispatching all read
`REGISTRY`, which is built by importing every module of this package and
instantiating each concrete `ActionKind` subclass it defines, in module order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from healthscore.actions.kinds.base import ActionKind


def _discover() -> dict[str, ActionKind]:
    kinds: dict[str, ActionKind] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name == "base":
            continue
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, ActionKind)
                and value.__module__ == loaded.__name__
            ):
                kind = value()
                kinds[kind.name] = kind
    return kinds


REGISTRY: Mapping[str, ActionKind] = _discover()
"""`do:` name -> the kind, e.g. "slack" -> Slack()."""

KIND_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    name: kind.schema for name, kind in REGISTRY.items()
}
"""`do:` name -> JSON Schema of the kind's keys, what the core validator takes."""

__all__ = ["KIND_SCHEMAS", "REGISTRY", "ActionKind"]
