"""Keys of the CRM cache: which cached snapshot an incremental pull may start from.

A cached snapshot only holds the properties its pull asked for, so the key
includes a hash of exactly that request: a playbook edit that needs a new
property, or another playbook on the same portal, gets a full pull instead of
silently missing values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping


def source_cache_key(source: str, location: str, needs: Mapping[str, Iterable[str]]) -> str:
    """`<source>:<sha256 of the address and the requested properties>`, short and stable."""
    request = {kind: sorted(set(props)) for kind, props in sorted(needs.items())}
    digest = hashlib.sha256(
        json.dumps([location, request], sort_keys=True).encode("utf-8")
    ).hexdigest()
    return f"{source}:{digest[:40]}"
