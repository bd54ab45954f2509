"""HubSpot's token scopes: the per-endpoint table, the 403 refusal, token files, token-info.

The table is built from the `security` entries of HubSpot's public OpenAPI
collection (github.com/HubSpot/HubSpot-public-api-spec-collection, under
`PublicApiSpecs/`):

- objects: `CRM/<Type>/Rollouts/424/v3/<type>.json` for companies, contacts,
  deals, tickets, tasks, notes, meetings, calls and emails (engagements need the
  *contacts* scopes there); custom object types take the `crm.objects.custom.*`
  scopes that `CRM/Objects/Rollouts/424/v3/objects.json` lists;
- properties: `CRM/Properties/Rollouts/145899/v3/properties.json`, whose union of
  alternatives is narrowed to the ones that name the object type (for types the
  spec names no write scope for, the whole union of write alternatives applies);
- associations v4: `CRM/Associations/Rollouts/130902/v4/associations.json`,
  narrowed to the read/write scopes of the `from` object type;
- owners: `CRM/Crm Owners/Rollouts/146888/v3/crmOwners.json`;
- lists: `CRM/Lists/Rollouts/144891/v3/lists.json` (writes need two scopes at once);
- custom object schemas: `CRM/Schemas/Rollouts/145900/v3/schemas.json` (reads take
  `crm.schemas.custom.read`);
- account info: `Account/Account Info/Rollouts/144923/v3/accountInfo.json` (`oauth`,
  which every token carries);
- exports: `CRM/Exports/Rollouts/95922/v3/exports.json` (`crm.export`).

A value is a list of alternatives; any one alternative suffices and every scope
inside an alternative is needed, as OpenAPI's `security` list means.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .hubspot import unauthorized

Alternatives = tuple[tuple[str, ...], ...]
ScopeKey = tuple[str, str]

# Every token has it; HubSpot's apps cannot drop it.
IMPLICIT_SCOPE = "oauth"
SANDBOX_APP_ID = 2_000_001
SANDBOX_USER_ID = 9_000_000
SANDBOX_HUB_ID = 12345678


def _one(*scopes: str) -> Alternatives:
    """Alternatives of one scope each: any one of `scopes` suffices."""
    return tuple((s,) for s in scopes)


# (read, write) per object type, from each type's own spec file.
OBJECT_SCOPES: dict[str, tuple[Alternatives, Alternatives]] = {
    "companies": (_one("crm.objects.companies.read"), _one("crm.objects.companies.write")),
    "contacts": (_one("crm.objects.contacts.read"), _one("crm.objects.contacts.write")),
    "deals": (_one("crm.objects.deals.read"), _one("crm.objects.deals.write")),
    "tickets": (_one("tickets"), _one("tickets")),
    "tasks": (_one("crm.objects.contacts.read"), _one("crm.objects.contacts.write")),
    "notes": (_one("crm.objects.contacts.read"), _one("crm.objects.contacts.write")),
    "meetings": (_one("crm.objects.contacts.read"), _one("crm.objects.contacts.write")),
    "calls": (_one("crm.objects.contacts.read"), _one("crm.objects.contacts.write")),
    "emails": (
        _one("crm.objects.contacts.read", "sales-email-read"),
        _one("crm.objects.contacts.write", "sales-email-read"),
    ),
}
CUSTOM_OBJECT_SCOPES = (_one("crm.objects.custom.read"), _one("crm.objects.custom.write"))

# properties.json: the write alternatives of POST /crm/v3/properties/{objectType}.
_PROPERTY_WRITE_UNION = _one(
    "crm.schemas.quotes.write",
    "tickets",
    "crm.schemas.invoices.write",
    "crm.schemas.orders.write",
    "crm.schemas.commercepayments.write",
    "crm.schemas.courses.write",
    "tickets.sensitive.v2",
    "e-commerce",
    "crm.schemas.appointments.write",
    "crm.schemas.contacts.write",
    "crm.schemas.carts.write",
    "crm.objects.tickets.sensitive.write",
    "crm.schemas.companies.write",
    "crm.schemas.subscriptions.write",
    "crm.schemas.custom.write",
    "crm.schemas.listings.write",
    "crm.pipelines.orders.write",
    "crm.objects.users.write",
    "tickets.highly_sensitive.v2",
    "crm.schemas.services.write",
    "crm.objects.orders.write",
    "crm.schemas.projects.write",
    "crm.schemas.deals.write",
    "crm.objects.carts.write",
    "crm.schemas.tickets.write",
    "crm.objects.tickets.highly_sensitive.write",
)


def _property_scopes(object_type: str) -> tuple[Alternatives, Alternatives]:
    """properties.json's alternatives narrowed to the ones naming `object_type`."""
    objects_read = "tickets" if object_type == "tickets" else f"crm.objects.{object_type}.read"
    read = _one(f"crm.schemas.{object_type}.read", objects_read)
    named = tuple(alt for alt in _PROPERTY_WRITE_UNION if f".{object_type}." in alt[0])
    if object_type == "tickets":
        named = (*named, ("tickets",))
    return read, named or _PROPERTY_WRITE_UNION


_OBJECT_READS = ("GET ", "POST /batch/read", "POST /search", "GET /{objectId}")
_OBJECT_WRITES = (
    "POST ",
    "POST /batch/archive",
    "POST /batch/create",
    "POST /batch/update",
    "POST /batch/upsert",
    "POST /merge",
    "PATCH /{objectId}",
    "DELETE /{objectId}",
)
_PROPERTY_READS = ("GET ", "GET /{propertyName}", "POST /batch/read", "GET /groups")
_PROPERTY_READS_2 = ("GET /groups/{groupName}",)
_PROPERTY_WRITES = (
    "POST ",
    "PATCH /{propertyName}",
    "DELETE /{propertyName}",
    "POST /batch/create",
    "POST /batch/archive",
    "POST /groups",
    "PATCH /groups/{groupName}",
    "DELETE /groups/{groupName}",
)
_ASSOC_READS = ("POST /batch/read",)
_ASSOC_WRITES = (
    "POST /batch/create",
    "POST /batch/associate/default",
    "POST /batch/archive",
    "POST /batch/labels/archive",
)
_LIST_READ = _one("crm.lists.read")
_LIST_WRITE = (
    ("cms.membership.access_groups.write", "crm.lists.read"),
    ("crm.lists.read", "crm.lists.write"),
)
_LISTS: dict[str, Alternatives] = {
    "GET /crm/v3/lists": _LIST_READ,
    "POST /crm/v3/lists": _one("crm.lists.write", "cms.membership.access_groups.write"),
    "POST /crm/v3/lists/search": _LIST_READ,
    "GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}": _LIST_READ,
    "GET /crm/v3/lists/{listId}": _LIST_READ,
    "DELETE /crm/v3/lists/{listId}": _LIST_WRITE,
    "PUT /crm/v3/lists/{listId}/restore": _LIST_WRITE,
    "PUT /crm/v3/lists/{listId}/update-list-name": _LIST_WRITE,
    "GET /crm/v3/lists/{listId}/memberships": _LIST_READ,
    "DELETE /crm/v3/lists/{listId}/memberships": _LIST_WRITE,
    "PUT /crm/v3/lists/{listId}/memberships/add": _LIST_WRITE,
    "PUT /crm/v3/lists/{listId}/memberships/remove": _LIST_WRITE,
    "PUT /crm/v3/lists/{listId}/memberships/add-and-remove": _LIST_WRITE,
    "GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships": _LIST_READ,
}
_SCHEMA_READ = _one("crm.schemas.custom.read")
_OTHER: dict[str, Alternatives] = {
    **{
        f"GET {base}{tail}": _SCHEMA_READ
        for base in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas")
        for tail in ("", "/{objectType}")
    },
    "GET /crm/v3/owners": _one("automation", "crm.objects.owners.read"),
    "GET /crm/v3/owners/{ownerId}": _one("automation", "crm.objects.owners.read"),
    "GET /account-info/v3/details": _one(IMPLICIT_SCOPE),
    "GET /account-info/v3/api-usage/daily/private-apps": _one(IMPLICIT_SCOPE),
    "POST /crm/v3/exports/export/async": _one("crm.export"),
    "GET /crm/v3/exports/export/async/tasks/{taskId}/status": _one("crm.export"),
    "GET /crm/v3/exports/export/{exportId}": _one("crm.export"),
}


def _family(
    base: str, ops: Iterable[str], alternatives: Alternatives
) -> dict[ScopeKey, Alternatives]:
    out: dict[ScopeKey, Alternatives] = {}
    for op in ops:
        method, _, tail = op.partition(" ")
        out[(method, base + tail)] = alternatives
    return out


def _build_table() -> dict[ScopeKey, Alternatives]:
    table: dict[ScopeKey, Alternatives] = {}
    types: dict[str, tuple[Alternatives, Alternatives]] = {
        **OBJECT_SCOPES,
        "{objectType}": CUSTOM_OBJECT_SCOPES,
    }
    for name, (read, write) in types.items():
        table |= _family(f"/crm/v3/objects/{name}", _OBJECT_READS, read)
        table |= _family(f"/crm/v3/objects/{name}", _OBJECT_WRITES, write)
        assoc = f"/crm/v4/associations/{name}/{{toObjectType}}"
        table |= _family(assoc, _ASSOC_READS, read)
        table |= _family(assoc, _ASSOC_WRITES, write)
        v4 = f"/crm/v4/objects/{name}/{{objectId}}/associations"
        table[("GET", v4 + "/{toObjectType}")] = read
        table[("PUT", v4 + "/{toObjectType}/{toObjectId}")] = write
        table[("DELETE", v4 + "/{toObjectType}/{toObjectId}")] = write
        table[("PUT", v4 + "/default/{toObjectType}/{toObjectId}")] = write
        prop_read, prop_write = _property_scopes("custom" if name == "{objectType}" else name)
        props = f"/crm/v3/properties/{name}"
        table |= _family(props, (*_PROPERTY_READS, *_PROPERTY_READS_2), prop_read)
        table |= _family(props, _PROPERTY_WRITES, prop_write)
    for op, alternatives in {**_LISTS, **_OTHER}.items():
        method, _, path = op.partition(" ")
        table[(method, path)] = alternatives
    return table


SCOPE_TABLE: dict[ScopeKey, Alternatives] = _build_table()
ALL_SCOPES: tuple[str, ...] = tuple(
    sorted({s for alts in SCOPE_TABLE.values() for alt in alts for s in alt})
)


def required_scopes() -> dict[tuple[str, str], list[list[str]]]:
    """`{(METHOD, path_template): [[scope, ...], ...]}`: any one inner list suffices.

    Path templates are the sandbox's routes with the object type filled in
    (`/crm/v3/objects/companies/{objectId}`); `{objectType}` stands for custom objects.
    """
    return {key: [list(alt) for alt in alts] for key, alts in SCOPE_TABLE.items()}


def scopes_for(
    method: str, template: str, params: Mapping[str, str], resolve: Any
) -> Alternatives | None:
    """The alternatives for one request; `resolve` maps an object type name to its plural."""
    concrete = template.rstrip("/") or "/"
    for key in ("objectType", "fromObjectType"):
        name = params.get(key)
        if name is not None:
            resolved = resolve(name) or name
            specific = concrete.replace("{" + key + "}", resolved)
            if (method, specific) in SCOPE_TABLE:
                return SCOPE_TABLE[(method, specific)]
            concrete = concrete.replace("{" + key + "}", "{objectType}")
    return SCOPE_TABLE.get((method, concrete))


def granted(alternatives: Alternatives, scopes: frozenset[str]) -> bool:
    return any(all(s in scopes for s in alt) for alt in alternatives)


def missing_scopes_body(alternatives: Alternatives) -> dict[str, Any]:
    """HubSpot's 403 `MISSING_SCOPES` body; one `errors` entry per alternative of several scopes.

    Shape as HubSpot answers (e.g. the HubSpot Community thread quoted at
    eshopman-com.pages.dev "HubSpot API 'Missing Scopes' Error"): "One or more of
    the following scopes are required." when any single scope would do, "All of
    the following scopes are required." for a set needed together.
    """
    if all(len(alt) == 1 for alt in alternatives):
        errors = [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [alt[0] for alt in alternatives]},
            }
        ]
    else:
        errors = [
            {
                "message": "All of the following scopes are required.",
                "context": {"requiredGranularScopes": list(alt)},
            }
            for alt in alternatives
        ]
    return {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
        "correlationId": str(uuid.uuid4()),
        "errors": errors,
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    }


def missing_scopes(alternatives: Alternatives) -> Response:
    return JSONResponse(missing_scopes_body(alternatives), status_code=403)


def normalize_tokens(tokens: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Token -> granted scopes, each with `oauth`, which HubSpot grants every app."""
    return {str(t): frozenset([*map(str, scopes), IMPLICIT_SCOPE]) for t, scopes in tokens.items()}


def load_tokens(path: str | Path) -> dict[str, list[str]]:
    """Read `{"token": ["scope", ...]}` from a JSON file; ValueError naming the file otherwise."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source}: cannot read the tokens file: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str)
        and k
        and isinstance(v, list)
        and all(isinstance(s, str) and s for s in v)
        for k, v in data.items()
    ):
        raise ValueError(
            f'{source}: expected a JSON object {{"token": ["scope", ...]}} '
            "with non-empty token strings and lists of scope strings"
        )
    return {k: list(v) for k, v in data.items()}


async def access_token_info(request: Request) -> Response:
    """`POST /oauth/v2/private-apps/get/access-token-info` with `{"tokenKey": ...}`.

    Answers `{"userId", "hubId", "appId", "scopes"}` as HubSpot's private-apps guide
    documents (developers.hubspot.com/docs/api/private-apps, "View private app
    access token information"; not part of the OpenAPI collection, whose
    `Auth/Oauth/Rollouts/155908/v1/oauth.json` covers OAuth tokens only). Without
    a tokens table every non-empty token has every scope the sandbox knows.
    An unknown token is refused with HubSpot's 401.
    """
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        body = {}
    token = str(body.get("tokenKey") or "") if isinstance(body, dict) else ""
    tokens: dict[str, frozenset[str]] | None = request.app.state.tokens
    if not token or (tokens is not None and token not in tokens):
        return unauthorized().response()
    scopes = sorted(tokens[token]) if tokens is not None else list(ALL_SCOPES)
    return JSONResponse(
        {
            "userId": SANDBOX_USER_ID,
            "hubId": SANDBOX_HUB_ID,
            "appId": SANDBOX_APP_ID,
            "scopes": scopes,
        }
    )


def routes() -> list[BaseRoute]:
    return [
        Route(
            "/oauth/v2/private-apps/get/access-token-info",
            access_token_info,
            methods=["POST"],
        )
    ]
