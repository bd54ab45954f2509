"""HubSpot CRM API v3/v4 at HubSpot's own paths, shapes, limits and errors.

Enough of the CRM for `hubspot-api-client` to run unpatched: objects (list,
get, create, update, archive, batch read/create/update/archive, search, merge),
associations v4 (batch read/create/archive, per record read/create/delete, labels),
owners, properties and property groups, lists v3 with manual memberships, and
custom object schemas. Specs: HubSpot/HubSpot-public-api-spec-collection,
PublicApiSpecs/CRM/*/Rollouts/*/v3|v4/*.json. The CRM Exports API is in
`hubspot_exports`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from healthscore.core.crm import OBJECT_TYPE_IDS, property_string

from . import hubspot_search as search
from . import hubspot_values as values
from .state import (
    ASSOCIATION_TYPE_IDS,
    BASE_PROPERTIES,
    DEFAULT_RETURNED,
    PORTAL_ID,
    PROPERTY_FIELDS,
    SINGULAR,
    HsList,
    HsObject,
    HubSpotState,
    SandboxState,
    association_type_id,
    association_type_name,
    property_definition,
)
from .timefmt import hubspot_iso, utc_now

LIST_LIMIT = 100
BATCH_LIMIT = 100
SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
"""HubSpot "Search the CRM", Limitations: "The search endpoints are limited to 10,000 total
results for any given query. Attempting to page beyond 10,000 will result in a 400 error."
(developers.hubspot.com/docs/api/crm/search#limitations). `total` still counts every match.
The sandbox's cap is `SandboxState.search_cap` (default this one)."""
ASSOCIATION_BATCH_LIMIT = 1_000
ASSOCIATION_PAGE = 500
OWNERS_LIMIT = 500
MEMBERSHIPS_LIMIT = 250
# HubSpot's documented path and the one hubspot-api-client calls.
SCHEMA_BASES = ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas")


class HubSpotError(Exception):
    """An error answered in HubSpot's JSON error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        *,
        sub_category: str | None = None,
        context: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.context = context
        self.extra = extra or {}
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context is not None:
            body["context"] = dict(self.context)
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def unauthorized() -> HubSpotError:
    return HubSpotError(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        "INVALID_AUTHENTICATION",
        extra={"links": {"api key": "https://app.hubspot.com/l/api-key/"}},
    )


def rate_limited(policy: str, headers: Mapping[str, str]) -> HubSpotError:
    """HubSpot's 429: `errorType` RATE_LIMIT and the name of the spent policy."""
    limit_name = {
        "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
        "SECONDLY": "secondly",
        "DAILY": "daily",
    }.get(policy, policy.lower())
    error = HubSpotError(
        429,
        f"You have reached your {limit_name} limit.",
        "RATE_LIMITS",
        extra={"errorType": "RATE_LIMIT", "policyName": policy, "groupName": "sandbox"},
        headers=headers,
    )
    return error


def server_error(status: int) -> HubSpotError:
    messages = {
        500: "internal error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }
    return HubSpotError(status, messages.get(status, "error"), "INTERNAL_ERROR")


def _validation(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", **kwargs)


def _not_found(message: str = "resource not found") -> HubSpotError:
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


# ---------------------------------------------------------------- helpers


def _hs(request: Request) -> HubSpotState:
    state: SandboxState = request.app.state.sandbox
    return state.hubspot


def _object_type(hs: HubSpotState, name: str) -> str:
    resolved = hs.resolve_type(name)
    if resolved is None:
        raise _validation(f"Unable to infer object type from: {name}")
    return resolved


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _validation(
            f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _multi(request: Request, name: str) -> list[str] | None:
    """`a,b&name=c` -> [a, b, c]; None when the parameter is absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _validation(f"Unable to parse {name}: {raw}") from None
    if value < 1 or value > maximum:
        raise _validation(
            f"{name} must be between 1 and {maximum}, got {value}",
            context={name: [str(value)]},
        )
    return value


def _offset(after: Any, what: str = "after") -> int:
    if after in (None, ""):
        return 0
    try:
        value = int(str(after))
    except ValueError:
        raise _validation(f"Invalid {what} cursor: {after}") from None
    if value < 0:
        raise _validation(f"Invalid {what} cursor: {after}")
    return value


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _paging(request: Request, after: int | None, path: str) -> dict[str, Any]:
    """`paging.next`, its link keeping the request's query string with `after` replaced.

    HubSpot's `ForwardPaging.next.link` is the same call for the next page, so a
    client that only follows links (dlt's HubSpot source) keeps its `limit`,
    `properties` and `archived`.
    """
    if after is None:
        return {}
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    link = f"{str(request.base_url).rstrip('/')}{path}?{urlencode([*query, ('after', after)])}"
    return {"paging": {"next": {"after": str(after), "link": link}}}


def _batch_inputs(body: Any, limit: int = BATCH_LIMIT) -> list[Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
        raise _validation("Invalid input JSON: inputs is required and must be a list")
    inputs = body["inputs"]
    if len(inputs) > limit:
        raise _validation(
            f"Too many inputs: {len(inputs)} were given, the limit is {limit}.",
            context={"inputs": [str(len(inputs))]},
        )
    return inputs


def render(
    hs: HubSpotState,
    object_type: str,
    obj: HsObject,
    props: Iterable[str] | None,
    associations: list[str] | None = None,
) -> dict[str, Any]:
    """One object as HubSpot renders it: requested properties plus the defaults."""
    defined = hs.properties.get(object_type, {})
    if props is None:
        names: Iterable[str] = DEFAULT_RETURNED.get(object_type, BASE_PROPERTIES)
    else:
        names = [*props, *BASE_PROPERTIES]
    out: dict[str, str | None] = {}
    for name in names:
        if name in obj.properties:
            out[name] = obj.properties[name]
        elif name in defined:
            out[name] = None
    body: dict[str, Any] = {
        "id": obj.id,
        "properties": out,
        "createdAt": obj.created_at,
        "updatedAt": obj.updated_at,
        "archived": obj.archived,
    }
    if obj.archived:
        body["archivedAt"] = obj.archived_at
    if associations:
        assoc: dict[str, Any] = {}
        for name in associations:
            to_type = hs.resolve_type(name)
            if to_type is None:
                continue
            ids = hs.associated(object_type, obj.id, to_type)
            if ids:
                kind = association_type_name(object_type, to_type)
                assoc[to_type] = {"results": [{"id": i, "type": kind} for i in ids]}
        if assoc:
            body["associations"] = assoc
    return body


def _check_properties(
    hs: HubSpotState,
    object_type: str,
    inputs: Iterable[Mapping[str, str | None]],
    where: Iterable[dict[str, list[str]]] | None = None,
) -> None:
    """Refuse the whole call when any value misses its definition, as HubSpot does.

    The message is HubSpot's "Property values were not valid: [...]" (changelog
    "Enhanced Validations for Non-String Properties"); `errors` adds one
    `ErrorDetail` (Error schema of `CRM/Objects/Rollouts/424/v3/objects.json`)
    per problem, its context naming the property and, for batches, the input
    (`where`: `{"id": [...]}` or `{"inputIndex": [...]}`). Nothing is applied.
    """
    defined = hs.properties.get(object_type, {})
    unchecked = {name for kind, name in hs.inferred if kind == object_type}
    places = list(where) if where is not None else []
    problems: list[values.Problem] = []
    for i, props in enumerate(inputs):
        context = places[i] if i < len(places) else {}
        problems.extend(values.check_values(defined, unchecked, props, context))
    if problems:
        legacy: list[dict[str, Any]] = []
        for problem in problems:
            entry = {**problem.legacy(), "portalId": SANDBOX_PORTAL_ID}
            if entry not in legacy:
                legacy.append(entry)
        raise _validation(
            "Property values were not valid: " + json.dumps(legacy, separators=(",", ":")),
            extra={"errors": [p.detail() for p in problems]},
        )


def _properties_of(entry: Any) -> dict[str, str | None]:
    props = entry.get("properties") if isinstance(entry, Mapping) else None
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise _validation("Invalid input JSON: properties must be an object")
    return {str(k): property_string(v) for k, v in props.items()}


def _writable(props: Mapping[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in props.items() if k not in ("hs_object_id", "hs_lastmodifieddate")}


def _find(hs: HubSpotState, object_type: str, key: str, id_property: str | None) -> HsObject | None:
    objects = hs.objects.get(object_type, {})
    if not id_property or id_property == "hs_object_id":
        return objects.get(hs.canonical_id(object_type, str(key)))
    return next((o for o in objects.values() if o.properties.get(id_property) == str(key)), None)


def _association_target(hs: HubSpotState, object_type: str, type_id: int) -> str | None:
    for (from_type, to_type), known in ASSOCIATION_TYPE_IDS.items():
        if from_type == object_type and known == type_id:
            return to_type
    for to_type in hs.objects:
        if association_type_id(object_type, to_type) == type_id:
            return to_type
    return None


def _create_associations(hs: HubSpotState, object_type: str, entry: Any) -> list[tuple[str, str]]:
    """Validate a v3 create's `associations` before anything is written."""
    pairs: list[tuple[str, str]] = []
    for assoc in (entry.get("associations") or []) if isinstance(entry, Mapping) else []:
        to_id = str((assoc.get("to") or {}).get("id", ""))
        types = assoc.get("types") or []
        if not to_id or not types:
            raise _validation("Invalid association: to.id and types are required")
        for spec in types:
            to_type = _association_target(hs, object_type, int(spec.get("associationTypeId", -1)))
            if to_type is None:
                raise _validation(
                    f"{spec.get('associationTypeId')} is not a valid association type id "
                    f"for {SINGULAR.get(object_type, object_type)}",
                    sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            if to_id not in hs.objects.get(to_type, {}):
                raise _validation(
                    f"One or more associations are invalid: {to_type} {to_id} does not exist",
                    sub_category="crm.associations.INVALID_OBJECT_IDS",
                )
            pairs.append((to_type, to_id))
    return pairs


def _batch_envelope(
    results: list[Any], started: str, errors: list[dict[str, Any]], status: int = 200
) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": hubspot_iso(utc_now()),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        status = 207
    return JSONResponse(body, status_code=status)


def _missing_error(object_type: str, ids: list[str], verb: str = "get") -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not {verb} some {object_type} objects, they may be deleted or not "
        "exist. Check that ids are valid.",
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }


# ---------------------------------------------------------------- objects


async def list_objects(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    limit = _int_param(request, "limit", 10, LIST_LIMIT)
    start = _offset(request.query_params.get("after"))
    archived = _flag(request, "archived")
    records = [o for o in hs.objects[object_type].values() if o.archived == archived]
    page = records[start : start + limit]
    props = _multi(request, "properties")
    associations = _multi(request, "associations")
    body: dict[str, Any] = {
        "results": [render(hs, object_type, o, props, associations) for o in page]
    }
    more = start + limit < len(records)
    body.update(_paging(request, start + limit if more else None, f"/crm/v3/objects/{object_type}"))
    return JSONResponse(body)


async def get_object(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    obj = _find(
        hs, object_type, request.path_params["objectId"], request.query_params.get("idProperty")
    )
    if obj is None or obj.archived != _flag(request, "archived"):
        raise _not_found()
    props = _multi(request, "properties")
    return JSONResponse(render(hs, object_type, obj, props, _multi(request, "associations")))


def _create_one(hs: HubSpotState, object_type: str, entry: Any) -> tuple[dict[str, Any], list[Any]]:
    props = _writable(_properties_of(entry))
    pairs = _create_associations(hs, object_type, entry)
    return props, pairs


def _commit_create(
    hs: HubSpotState, object_type: str, props: dict[str, Any], pairs: list[Any]
) -> HsObject:
    if props.get("createdate") is None:
        props.pop("createdate", None)
    obj = hs.create_object(object_type, props)
    for to_type, to_id in pairs:
        hs.associate(object_type, obj.id, to_type, to_id)
    return obj


async def create_object(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    props, pairs = _create_one(hs, object_type, body)
    _check_properties(hs, object_type, [props])
    obj = _commit_create(hs, object_type, props, pairs)
    return JSONResponse(render(hs, object_type, obj, list(props)), status_code=201)


async def update_object(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    obj = _find(
        hs, object_type, request.path_params["objectId"], request.query_params.get("idProperty")
    )
    if obj is None or obj.archived:
        raise _not_found()
    props = _writable(_properties_of(await _json(request)))
    _check_properties(hs, object_type, [props])
    obj.properties.update(props)
    hs.touch(object_type, obj)
    return JSONResponse(render(hs, object_type, obj, list(props)))


async def archive_object(request: Request) -> Response:
    """`DELETE /crm/v3/objects/{objectType}/{objectId}`: to the recycling bin, 204.

    Spec: PublicApiSpecs/CRM/Objects/Rollouts/424/v3/objects.json. The record stays
    readable with `archived=true`; `hs_lastmodifieddate` does not move (see
    `HubSpotState.archive`).
    """
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    obj = hs.objects[object_type].get(request.path_params["objectId"])
    if obj is not None:
        hs.archive(object_type, obj)
    return Response(status_code=204)


async def batch_read(request: Request) -> Response:
    started = hubspot_iso(utc_now())
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    inputs = _batch_inputs(body)
    props = body.get("properties")
    id_property = body.get("idProperty")
    archived = _flag(request, "archived")
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    for entry in inputs:
        key = str(entry.get("id", "")) if isinstance(entry, Mapping) else ""
        obj = _find(hs, object_type, key, id_property)
        if obj is None or obj.archived != archived:
            missing.append(key)
            continue
        results.append(render(hs, object_type, obj, props if props else None))
    errors = [_missing_error(object_type, missing)] if missing else []
    return _batch_envelope(results, started, errors)


async def batch_create(request: Request) -> Response:
    started = hubspot_iso(utc_now())
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    inputs = _batch_inputs(await _json(request))
    prepared = [_create_one(hs, object_type, entry) for entry in inputs]
    _check_properties(
        hs,
        object_type,
        [props for props, _ in prepared],
        [{"inputIndex": [str(i)]} for i in range(len(prepared))],
    )
    results = []
    for props, pairs in prepared:
        obj = _commit_create(hs, object_type, props, pairs)
        results.append(render(hs, object_type, obj, list(props)))
    return _batch_envelope(results, started, [], status=201)


async def batch_update(request: Request) -> Response:
    started = hubspot_iso(utc_now())
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    inputs = _batch_inputs(await _json(request))
    updates: list[tuple[str, str | None, dict[str, str | None]]] = []
    for entry in inputs:
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise _validation("Invalid input JSON: every input needs an id")
        updates.append(
            (str(entry["id"]), entry.get("idProperty"), _writable(_properties_of(entry)))
        )
    ids = [u[0] for u in updates]
    if len(set(ids)) != len(ids):
        raise _validation(
            "Duplicate IDs found in batch input: "
            + ", ".join(sorted(set(i for i in ids if ids.count(i) > 1)))
        )
    _check_properties(
        hs, object_type, [props for _, _, props in updates], [{"id": [u[0]]} for u in updates]
    )
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    for key, id_property, props in updates:
        obj = _find(hs, object_type, key, id_property)
        if obj is None or obj.archived:
            missing.append(key)
            continue
        obj.properties.update(props)
        hs.touch(object_type, obj)
        results.append(render(hs, object_type, obj, list(props)))
    errors = [_missing_error(object_type, missing, "update")] if missing else []
    return _batch_envelope(results, started, errors)


async def search_objects(request: Request) -> Response:
    """`POST /crm/v3/objects/{objectType}/search`: filters, sorts, `after` paging.

    Spec: PublicApiSpecs/CRM/Objects/Rollouts/424/v3/objects.json
    (`PublicObjectSearchRequest`, `CollectionResponseWithTotalSimplePublicObject`).
    At most `search_cap` results per query (`SEARCH_RESULT_CAP`): an `after` at or
    past it is a 400 (`paging.next` still offers it, so a client must stop itself).
    """
    hs = _hs(request)
    cap = request.app.state.sandbox.search_cap
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    if not isinstance(body, Mapping):
        raise _validation("Invalid input JSON: the search body must be an object")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or limit < 0 or limit > SEARCH_PAGE_LIMIT:
        raise _validation(
            f"Invalid input: limit must be between 0 and {SEARCH_PAGE_LIMIT}",
            context={"limit": [str(limit)]},
        )
    start = _offset(body.get("after"))
    if start >= cap:
        raise _validation(
            f"Cannot page past {cap} results. Narrow the query with filters.",
            sub_category="crm.search.PAGINATION_LIMIT_EXCEEDED",
        )
    groups = body.get("filterGroups") or []
    too_much = search.limits_error(groups, body.get("query"))
    if too_much:
        raise _validation(too_much, sub_category="crm.search.LIMIT_EXCEEDED")
    for group in groups:
        for flt in group.get("filters") or []:
            problem = search.filter_error(flt)
            if problem:
                raise _validation(problem)
    defined = hs.properties.get(object_type, {})

    def kind(name: str) -> str | None:
        return defined.get(name, {}).get("type")

    def lookup_for(obj: HsObject) -> Any:
        def lookup(name: str) -> str | list[str] | None:
            if name.startswith("associations."):
                to_type = hs.resolve_type(name.split(".", 1)[1])
                return hs.associated(object_type, obj.id, to_type) if to_type else []
            if name == "hs_object_id":
                return obj.id
            return obj.properties.get(name)

        return lookup

    query = str(body.get("query") or "").strip().lower()
    hits: list[HsObject] = []
    for obj in hs.objects[object_type].values():
        if obj.archived:
            continue
        lookup = lookup_for(obj)
        if groups and not any(
            all(search.matches(f, lookup, kind(f["propertyName"])) for f in g.get("filters") or [])
            for g in groups
        ):
            continue
        if query and not any(query in (v or "").lower() for v in obj.properties.values()):
            continue
        hits.append(obj)
    for name, descending in reversed(search.sort_spec(body.get("sorts"))):
        present = [o for o in hits if o.properties.get(name) not in (None, "")]
        absent = [o for o in hits if o.properties.get(name) in (None, "")]
        present.sort(
            key=lambda o, n=name: search.comparable(o.properties[n], kind(n)),  # type: ignore[misc]
            reverse=descending,
        )
        hits = present + absent
    end = min(start + limit, len(hits), cap)
    props = body.get("properties") or None
    out: dict[str, Any] = {
        "total": len(hits),
        "results": [render(hs, object_type, o, props) for o in hits[start:end]],
    }
    if end < len(hits) and limit > 0:  # HubSpot offers the page past the cap, then 400s
        out["paging"] = {"next": {"after": str(end), "link": None}}
    return JSONResponse(out)


# ---------------------------------------------------------------- associations v4


def _assoc_types(
    hs: HubSpotState, from_type: str, from_id: str, to_type: str, to_id: str
) -> list[dict[str, Any]]:
    """The unlabelled HUBSPOT_DEFINED type, then the USER_DEFINED labels on the pair."""
    defs = hs.label_defs.get((from_type, to_type), {})
    return [
        {
            "category": "HUBSPOT_DEFINED",
            "typeId": association_type_id(from_type, to_type),
            "label": None,
        },
        *(
            {"category": "USER_DEFINED", "typeId": type_id, "label": defs.get(type_id)}
            for type_id in hs.labels_on(from_type, from_id, to_type, to_id)
        ),
    ]


def _object_id_json(value: str) -> int | str:
    """HubSpot sends `toObjectId` as a number; ids that are not numbers stay strings."""
    return int(value) if value.isdigit() else value


async def associations_batch_read(request: Request) -> Response:
    started = hubspot_iso(utc_now())
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    inputs = _batch_inputs(await _json(request), ASSOCIATION_BATCH_LIMIT)
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for entry in inputs:
        from_id = str(entry.get("id", "")) if isinstance(entry, Mapping) else ""
        ids = hs.associated(from_type, from_id, to_type)
        if not ids:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "context": {"fromObjectId": [from_id]},
                    "message": f"No {SINGULAR.get(to_type, to_type)} is associated with "
                    f"{SINGULAR.get(from_type, from_type)} {from_id}.",
                    "errors": [],
                    "links": {},
                }
            )
            continue
        start = _offset(entry.get("after"))
        page = ids[start : start + ASSOCIATION_PAGE]
        result: dict[str, Any] = {
            "from": {"id": from_id},
            "to": [
                {
                    "toObjectId": _object_id_json(i),
                    "associationTypes": _assoc_types(hs, from_type, from_id, to_type, i),
                }
                for i in page
            ],
        }
        if start + ASSOCIATION_PAGE < len(ids):
            result["paging"] = {"next": {"after": str(start + ASSOCIATION_PAGE), "link": None}}
        results.append(result)
    return _batch_envelope(results, started, errors)


async def associations_batch_create(request: Request) -> Response:
    """v4 `batch/create` and `batch/associate/default`: link pairs, both directions."""
    started = hubspot_iso(utc_now())
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    inputs = _batch_inputs(await _json(request), ASSOCIATION_BATCH_LIMIT)
    pairs: list[tuple[str, str]] = []
    for entry in inputs:
        from_id = str((entry.get("from") or {}).get("id", ""))
        to_id = str((entry.get("to") or {}).get("id", ""))
        if from_id not in hs.objects[from_type] or to_id not in hs.objects[to_type]:
            raise _validation(
                f"One or more associations are invalid: {from_type} {from_id} or "
                f"{to_type} {to_id} does not exist",
                sub_category="crm.associations.INVALID_OBJECT_IDS",
            )
        pairs.append((from_id, to_id))
    results: list[dict[str, Any]] = []
    for from_id, to_id in pairs:
        hs.associate(from_type, from_id, to_type, to_id)
        results.append(
            {
                "fromObjectTypeId": OBJECT_TYPE_IDS.get(from_type, from_type),
                "fromObjectId": _object_id_json(from_id),
                "toObjectTypeId": OBJECT_TYPE_IDS.get(to_type, to_type),
                "toObjectId": _object_id_json(to_id),
                "labels": [],
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": association_type_id(from_type, to_type),
                },
            }
        )
    return _batch_envelope(results, started, [], status=201)


# ---------------------------------------------------------------- owners


async def list_owners(request: Request) -> Response:
    hs = _hs(request)
    limit = _int_param(request, "limit", 100, OWNERS_LIMIT)
    start = _offset(request.query_params.get("after"))
    email = request.query_params.get("email")
    archived = _flag(request, "archived")
    owners = [
        o
        for o in hs.owners
        if o["archived"] == archived
        and (not email or (o.get("email") or "").lower() == email.lower())
    ]
    body: dict[str, Any] = {"results": owners[start : start + limit]}
    more = start + limit < len(owners)
    body.update(_paging(request, start + limit if more else None, "/crm/v3/owners/"))
    return JSONResponse(body)


async def get_owner(request: Request) -> Response:
    hs = _hs(request)
    key = request.path_params["ownerId"]
    field = "userId" if request.query_params.get("idProperty") == "userId" else "id"
    owner = next((o for o in hs.owners if str(o[field]) == key), None)
    if owner is None:
        raise _not_found(f"Owner {key} not found")
    return JSONResponse(owner)


# ---------------------------------------------------------------- properties


async def list_properties(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    archived = _flag(request, "archived")
    props = [p for p in hs.properties[object_type].values() if p["archived"] == archived]
    return JSONResponse({"results": props})


async def get_property(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    prop = hs.properties[object_type].get(request.path_params["propertyName"])
    if prop is None:
        raise _not_found(
            f"Unable to find property {request.path_params['propertyName']} for {object_type}"
        )
    return JSONResponse(prop)


def _definition_error(field: str, message: str) -> HubSpotError:
    return _validation(
        message,
        extra={"errors": [{"message": message, "in": field, "context": {field: [message]}}]},
    )


async def create_property(request: Request) -> Response:
    """`POST /crm/v3/properties/{objectType}`: `PropertyCreate`, checked before it is stored.

    Spec: HubSpot-public-api-spec-collection
    `PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json` (201 `Property`;
    400 VALIDATION_ERROR for a bad name, type, fieldType or options; 409 when the
    name is taken).
    """
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise _validation(f"Invalid input JSON: missing required fields {', '.join(missing)}")
    problem = values.definition_problem(body, creating=True)
    if problem:
        raise _definition_error(*problem)
    name = str(body["name"])
    if name in hs.properties[object_type]:
        raise HubSpotError(
            409,
            f"A property named '{name}' already exists.",
            "OBJECT_ALREADY_EXISTS",
            context={"name": [name]},
        )
    if body["groupName"] not in hs.groups[object_type]:
        raise _validation(f"Property group {body['groupName']} does not exist for {object_type}")
    now = hubspot_iso(utc_now())
    prop = property_definition(
        object_type, name, str(body["type"]), hubspot_defined=False, created=now
    )
    for key in (*PROPERTY_FIELDS, "calculationFormula"):
        if key in body:
            prop[key] = body[key]
    hs.properties[object_type][name] = prop
    return JSONResponse(prop, status_code=201)


async def update_property(request: Request) -> Response:
    """`PATCH /crm/v3/properties/{objectType}/{propertyName}`: `PropertyUpdate` merged in.

    Spec: `PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json` (200
    `Property`). The merged definition must still pass the create rules; HubSpot's
    own definitions (`readOnlyDefinition`) only take label, description and options
    changes there, the sandbox refuses type changes to them.
    """
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    name = request.path_params["propertyName"]
    prop = hs.properties[object_type].get(name)
    if prop is None or prop["archived"]:
        raise _not_found(f"Unable to find property {name} for {object_type}")
    body = await _json(request)
    if not isinstance(body, Mapping):
        raise _validation("Invalid input JSON: the property update must be an object")
    changes = {k: v for k, v in body.items() if k in _PROPERTY_UPDATE_FIELDS}
    if prop["modificationMetadata"]["readOnlyDefinition"] and (
        changes.get("type", prop["type"]) != prop["type"]
    ):
        raise _definition_error("type", f"The type of HubSpot property {name} cannot change.")
    merged = {**prop, **changes}
    problem = values.definition_problem(merged, creating=False)
    if problem:
        raise _definition_error(*problem)
    if merged["groupName"] not in hs.groups[object_type]:
        raise _validation(f"Property group {merged['groupName']} does not exist for {object_type}")
    prop.update(changes)
    prop["updatedAt"] = hubspot_iso(utc_now())
    return JSONResponse(prop)


_PROPERTY_UPDATE_FIELDS = (
    "label",
    "type",
    "fieldType",
    "description",
    "groupName",
    "options",
    "displayOrder",
    "hidden",
    "formField",
    "calculationFormula",
)


async def list_groups(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    return JSONResponse({"results": list(hs.groups[object_type].values())})


async def get_group(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    group = hs.groups[object_type].get(request.path_params["groupName"])
    if group is None:
        raise _not_found(f"Unable to find property group {request.path_params['groupName']}")
    return JSONResponse(group)


async def create_group(request: Request) -> Response:
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    if not body.get("name") or not body.get("label"):
        raise _validation("Invalid input JSON: name and label are required")
    name = str(body["name"])
    if name in hs.groups[object_type]:
        raise HubSpotError(
            409,
            f"A property group named '{name}' already exists.",
            "OBJECT_ALREADY_EXISTS",
            context={"name": [name]},
        )
    group = {
        "name": name,
        "label": body["label"],
        "displayOrder": body.get("displayOrder", -1),
        "archived": False,
    }
    hs.groups[object_type][name] = group
    return JSONResponse(group, status_code=201)


# ---------------------------------------------------------------- lists v3


def _list_or_404(hs: HubSpotState, list_id: str) -> HsList:
    found = hs.lists.get(list_id)
    if found is None:
        raise _not_found(f"List does not exist with id {list_id}.")
    return found


async def create_list(request: Request) -> Response:
    hs = _hs(request)
    body = await _json(request)
    name = body.get("name")
    object_type_id = str(body.get("objectTypeId") or "")
    processing = body.get("processingType")
    if not name or not object_type_id or not processing:
        raise _validation("Invalid input JSON: name, objectTypeId and processingType are required")
    if processing not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
        raise _validation(f"Invalid processingType: {processing}")
    if hs.resolve_type(object_type_id) is None:
        raise _validation(f"Unable to infer object type from: {object_type_id}")
    _check_list_name(hs, str(name))
    now = hubspot_iso(utc_now())
    new = HsList(
        list_id=str(next(hs.next_list_id)),
        name=str(name),
        object_type_id=object_type_id,
        processing_type=str(processing),
        created_at=now,
        updated_at=now,
    )
    hs.lists[new.list_id] = new
    return JSONResponse({"list": new.to_json()})


def _check_list_name(hs: HubSpotState, name: str) -> None:
    """List names are unique across every object type (HubSpot's lists guide).

    The refusal names the object type that holds the name (`context.objectTypeId`,
    `context.listId`) so a client can say "a contacts list already has this name".
    Spec: `PublicApiSpecs/CRM/Lists/Rollouts/144891/v3/lists.json` (`POST /crm/v3/lists`).
    """
    taken = next((lst for lst in hs.lists.values() if lst.name.lower() == name.lower()), None)
    if taken is None:
        return
    kind = hs.resolve_type(taken.object_type_id) or taken.object_type_id
    raise _validation(
        f"A list named '{taken.name}' already exists (a {SINGULAR.get(kind, kind)} list, "
        f"id {taken.list_id}). List names are unique across all object types.",
        sub_category="ILS.LIST_NAME_ALREADY_EXISTS",
        context={
            "listName": [taken.name],
            "listId": [taken.list_id],
            "objectTypeId": [taken.object_type_id],
        },
    )


async def get_list_by_name(request: Request) -> Response:
    hs = _hs(request)
    name = request.path_params["listName"]
    object_type_id = request.path_params["objectTypeId"]
    for lst in hs.lists.values():
        if lst.name.lower() == name.lower() and lst.object_type_id == object_type_id:
            return JSONResponse({"list": lst.to_json()})
    raise _not_found(f"List does not exist with name {name} and object type {object_type_id}.")


async def get_list(request: Request) -> Response:
    return JSONResponse(
        {"list": _list_or_404(_hs(request), request.path_params["listId"]).to_json()}
    )


async def search_lists(request: Request) -> Response:
    hs = _hs(request)
    body = await _json(request)
    query = str(body.get("query") or "").lower()
    offset = int(body.get("offset") or 0)
    count = int(body.get("count") or 20)
    found = [lst for lst in hs.lists.values() if query in lst.name.lower()]
    page = found[offset : offset + count]
    return JSONResponse(
        {
            "lists": [lst.to_json() for lst in page],
            "offset": offset + len(page),
            "hasMore": offset + count < len(found),
            "total": len(found),
        }
    )


async def _member_ids(request: Request) -> list[str]:
    body = await _json(request)
    if not isinstance(body, list):
        raise _validation("Invalid input JSON: expected an array of record ids")
    return [str(i) for i in body]


def _membership_body(added: list[str], removed: list[str], missing: list[str]) -> dict[str, Any]:
    # HubSpot documents `recordIdsAdded`; its OpenAPI spec (and so hubspot-api-client's
    # MembershipsUpdateResponse) spells it `recordsIdsAdded`. Send both so either reads it.
    return {
        "recordIdsAdded": added,
        "recordsIdsAdded": added,
        "recordIdsRemoved": removed,
        "recordIdsMissing": missing,
    }


async def add_members(request: Request) -> Response:
    hs = _hs(request)
    lst = _list_or_404(hs, request.path_params["listId"])
    ids = await _member_ids(request)
    if lst.processing_type == "DYNAMIC":
        raise _validation("Memberships of DYNAMIC lists cannot be changed by hand.")
    object_type = hs.resolve_type(lst.object_type_id) or ""
    existing = hs.objects.get(object_type, {})
    added, missing = [], []
    now = hubspot_iso(utc_now())
    for record_id in ids:
        if record_id not in existing or existing[record_id].archived:
            missing.append(record_id)
        elif record_id not in lst.members:
            lst.members[record_id] = now
            added.append(record_id)
    if added:
        lst.version += 1
        lst.updated_at = now
    return JSONResponse(_membership_body(added, [], missing))


async def remove_members(request: Request) -> Response:
    hs = _hs(request)
    lst = _list_or_404(hs, request.path_params["listId"])
    ids = await _member_ids(request)
    if lst.processing_type == "DYNAMIC":
        raise _validation("Memberships of DYNAMIC lists cannot be changed by hand.")
    object_type = hs.resolve_type(lst.object_type_id) or ""
    existing = hs.objects.get(object_type, {})
    removed, missing = [], []
    for record_id in ids:
        if record_id in lst.members:
            del lst.members[record_id]
            removed.append(record_id)
        elif record_id not in existing:
            missing.append(record_id)
    if removed:
        lst.version += 1
        lst.updated_at = hubspot_iso(utc_now())
    return JSONResponse(_membership_body([], removed, missing))


def _record_order(record_id: str) -> tuple[int, str]:
    """Ascending record ids, numbers as numbers (the spec's order for memberships)."""
    return (len(record_id), record_id) if record_id.isdigit() else (1_000, record_id)


async def list_members(request: Request) -> Response:
    """`GET /crm/v3/lists/{listId}/memberships`: by ascending `recordId`, `limit` ≤ 250.

    Spec: PublicApiSpecs/CRM/Lists/Rollouts/144891/v3/lists.json (default limit 100).
    """
    hs = _hs(request)
    lst = _list_or_404(hs, request.path_params["listId"])
    limit = _int_param(request, "limit", 100, MEMBERSHIPS_LIMIT)
    start = _offset(request.query_params.get("after"))
    members = sorted(lst.members.items(), key=lambda m: _record_order(m[0]))
    page = members[start : start + limit]
    body: dict[str, Any] = {
        "results": [{"recordId": rid, "membershipTimestamp": ts} for rid, ts in page],
        "total": len(members),
    }
    if start + limit < len(members):
        body["paging"] = {"next": {"after": str(start + limit), "link": None}}
    return JSONResponse(body)


# ---------------------------------------------------------------- archive and merge


async def batch_archive(request: Request) -> Response:
    """`POST /crm/v3/objects/{objectType}/batch/archive`: `{"inputs": [{"id"}]}` -> 204.

    Spec: PublicApiSpecs/CRM/Objects/Rollouts/424/v3/objects.json (BatchInputSimplePublicObjectId,
    at most 100 inputs). Ids that do not exist or are archived already are passed over.
    """
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    for entry in _batch_inputs(await _json(request)):
        key = str(entry.get("id", "")) if isinstance(entry, Mapping) else ""
        obj = hs.objects[object_type].get(key)
        if obj is not None:
            hs.archive(object_type, obj)
    return Response(status_code=204)


async def merge_objects(request: Request) -> Response:
    """`POST /crm/v3/objects/{objectType}/merge`: `{"primaryObjectId", "objectIdToMerge"}`.

    Spec: PublicApiSpecs/CRM/Companies/Rollouts/424/v3/companies.json (also contacts,
    deals, tickets; PublicMergeInput -> SimplePublicObject, 200). What moves where:
    `HubSpotState.merge`. Either id missing or archived: 404; the same id twice: 400.
    """
    hs = _hs(request)
    object_type = _object_type(hs, request.path_params["objectType"])
    body = await _json(request)
    primary_id = str(body.get("primaryObjectId") or "") if isinstance(body, Mapping) else ""
    merged_id = str(body.get("objectIdToMerge") or "") if isinstance(body, Mapping) else ""
    if not primary_id or not merged_id:
        raise _validation("Invalid input JSON: primaryObjectId and objectIdToMerge are required")
    primary = _find(hs, object_type, primary_id, None)
    merged = _find(hs, object_type, merged_id, None)
    if primary is None or merged is None or primary.archived or merged.archived:
        missing = merged_id if primary is not None and not primary.archived else primary_id
        raise _not_found(f"Object {missing} of type {object_type} was not found.")
    if primary is merged:
        kind = SINGULAR.get(object_type, object_type)
        raise _validation(f"Cannot merge {kind} {primary_id} into itself.")
    hs.merge(object_type, primary, merged)
    props = [*DEFAULT_RETURNED.get(object_type, ()), "hs_merged_object_ids"]
    return JSONResponse(render(hs, object_type, primary, props))


# ---------------------------------------------------------------- associations v4, per record


def _live_object(hs: HubSpotState, object_type: str, object_id: str) -> HsObject:
    obj = hs.objects.get(object_type, {}).get(object_id)
    if obj is None or obj.archived:
        raise _validation(
            f"One or more associations are invalid: {object_type} {object_id} does not exist",
            sub_category="crm.associations.INVALID_OBJECT_IDS",
        )
    return obj


def _pair(request: Request, from_key: str) -> tuple[HubSpotState, str, str, str, str]:
    """(state, from type, from id, to type, to id) of a per-record v4 path, both checked."""
    hs = _hs(request)
    params = request.path_params
    from_type = _object_type(hs, params[from_key + "Type"])
    to_type = _object_type(hs, params["toObjectType"])
    from_id, to_id = str(params[from_key + "Id"]), str(params["toObjectId"])
    _live_object(hs, from_type, from_id)
    _live_object(hs, to_type, to_id)
    return hs, from_type, from_id, to_type, to_id


def _default_spec(from_type: str, from_id: str, to_type: str, to_id: str) -> dict[str, Any]:
    return {
        "from": {"id": from_id},
        "to": {"id": to_id},
        "associationSpec": {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": association_type_id(from_type, to_type),
        },
    }


async def create_default_association(request: Request) -> Response:
    """`PUT /crm/v4/objects/{from}/{fromId}/associations/default/{to}/{toId}`.

    Spec: PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json
    (BatchResponsePublicDefaultAssociation, 200: one result per direction). Neither
    record's `hs_lastmodifieddate` moves, as in HubSpot.
    """
    started = hubspot_iso(utc_now())
    hs, from_type, from_id, to_type, to_id = _pair(request, "fromObject")
    hs.associate(from_type, from_id, to_type, to_id)
    results = [
        _default_spec(from_type, from_id, to_type, to_id),
        _default_spec(to_type, to_id, from_type, from_id),
    ]
    return _batch_envelope(results, started, [])


def _check_type_id(hs: HubSpotState, from_type: str, to_type: str, spec: Any) -> int:
    """The type id of an AssociationSpec, refused unless it belongs to the pair of types."""
    category = spec.get("associationCategory") if isinstance(spec, Mapping) else None
    raw = spec.get("associationTypeId") if isinstance(spec, Mapping) else None
    type_id = raw if isinstance(raw, int) else -1
    known = (
        type_id == association_type_id(from_type, to_type)
        if category == "HUBSPOT_DEFINED"
        else type_id in hs.label_defs.get((from_type, to_type), {})
    )
    if not known:
        raise _validation(
            f"{raw} is not a valid {category} association type id from "
            f"{SINGULAR.get(from_type, from_type)} to {SINGULAR.get(to_type, to_type)}",
            sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
        )
    return type_id


async def create_labelled_association(request: Request) -> Response:
    """`PUT /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`.

    Body: `[{"associationCategory", "associationTypeId"}]`; answers LabelsBetweenObjectPair
    (201) with every label now on the pair. Spec:
    PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json.
    """
    hs, from_type, from_id, to_type, to_id = _pair(request, "object")
    body = await _json(request)
    if not isinstance(body, list) or not body:
        raise _validation("Invalid input JSON: expected a non-empty array of association specs")
    type_ids = [_check_type_id(hs, from_type, to_type, spec) for spec in body]
    hs.associate(from_type, from_id, to_type, to_id)
    for type_id in type_ids:
        if type_id in hs.label_inverse:
            hs.add_label(from_type, from_id, to_type, to_id, type_id)
    defs = hs.label_defs.get((from_type, to_type), {})
    labels = [defs[t] for t in hs.labels_on(from_type, from_id, to_type, to_id)]
    return JSONResponse(
        {
            "fromObjectTypeId": hs.type_id(from_type),
            "fromObjectId": _object_id_json(from_id),
            "toObjectTypeId": hs.type_id(to_type),
            "toObjectId": _object_id_json(to_id),
            "labels": labels,
        },
        status_code=201,
    )


async def delete_association(request: Request) -> Response:
    """`DELETE /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}`.

    Removes every association (labelled or not) between the two records: 204. Spec:
    PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json.
    """
    hs = _hs(request)
    params = request.path_params
    from_type = _object_type(hs, params["objectType"])
    to_type = _object_type(hs, params["toObjectType"])
    hs.dissociate(from_type, str(params["objectId"]), to_type, str(params["toObjectId"]))
    return Response(status_code=204)


async def list_record_associations(request: Request) -> Response:
    """`GET /crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}`, ≤ 500 a page.

    Spec: PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json
    (CollectionResponseMultiAssociatedObjectWithLabelForwardPaging; `limit` default 500).
    A record without associations (or archived, or unknown) gets `{"results": []}`.
    """
    hs = _hs(request)
    params = request.path_params
    from_type = _object_type(hs, params["objectType"])
    to_type = _object_type(hs, params["toObjectType"])
    from_id = hs.canonical_id(from_type, str(params["objectId"]))
    limit = _int_param(request, "limit", ASSOCIATION_PAGE, ASSOCIATION_PAGE)
    start = _offset(request.query_params.get("after"))
    ids = hs.associated(from_type, from_id, to_type)
    body: dict[str, Any] = {
        "results": [
            {
                "toObjectId": _object_id_json(i),
                "associationTypes": _assoc_types(hs, from_type, from_id, to_type, i),
            }
            for i in ids[start : start + limit]
        ]
    }
    more = start + limit < len(ids)
    path = f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}"
    body.update(_paging(request, start + limit if more else None, path))
    return JSONResponse(body)


def _input_id(value: Any) -> str:
    return str(value.get("id", "")) if isinstance(value, Mapping) else ""


async def associations_batch_archive(request: Request) -> Response:
    """`POST /crm/v4/associations/{from}/{to}/batch/archive`: `{"inputs": [{"from", "to": [..]}]}`.

    Removes every association of each pair, labels included: 204. Spec:
    PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json
    (BatchInputPublicAssociationMultiArchive).
    """
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    for entry in _batch_inputs(await _json(request), ASSOCIATION_BATCH_LIMIT):
        targets = entry.get("to") if isinstance(entry, Mapping) else None
        for target in targets if isinstance(targets, list) else []:
            hs.dissociate(from_type, _input_id(entry.get("from")), to_type, _input_id(target))
    return Response(status_code=204)


async def associations_batch_archive_labels(request: Request) -> Response:
    """`POST /crm/v4/associations/{from}/{to}/batch/labels/archive`: drop given labels, 204.

    Inputs `{"from", "to", "types": [AssociationSpec]}`; naming the unlabelled
    HUBSPOT_DEFINED type removes the whole association, as the spec says. Spec:
    PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json.
    """
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    inputs = _batch_inputs(await _json(request), ASSOCIATION_BATCH_LIMIT)
    work = [
        (
            _input_id(entry.get("from")),
            _input_id(entry.get("to")),
            [_check_type_id(hs, from_type, to_type, spec) for spec in entry.get("types") or []],
        )
        for entry in inputs
        if isinstance(entry, Mapping)
    ]
    default = association_type_id(from_type, to_type)
    for from_id, to_id, type_ids in work:
        for type_id in type_ids:
            if type_id == default:
                hs.dissociate(from_type, from_id, to_type, to_id)
            else:
                hs.remove_label(from_type, from_id, to_type, to_id, type_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- association labels


def _label_specs(hs: HubSpotState, from_type: str, to_type: str, ids: Iterable[int]) -> list[Any]:
    defs = hs.label_defs.get((from_type, to_type), {})
    return [{"category": "USER_DEFINED", "typeId": i, "label": defs[i]} for i in ids]


async def list_labels(request: Request) -> Response:
    """`GET /crm/v4/associations/{from}/{to}/labels`: the unlabelled type, then the labels.

    Spec: PublicApiSpecs/CRM/Associations Schema/Rollouts/130902/v4/associationsSchema.json
    (CollectionResponseAssociationSpecWithLabelNoPaging; HubSpot publishes the path as
    `/crm/associations/v4/...`, hubspot-api-client calls `/crm/v4/associations/...`).
    """
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    default = {
        "category": "HUBSPOT_DEFINED",
        "typeId": association_type_id(from_type, to_type),
        "label": None,
    }
    labels = _label_specs(hs, from_type, to_type, hs.label_defs.get((from_type, to_type), {}))
    return JSONResponse({"results": [default, *labels]})


async def create_label(request: Request) -> Response:
    """`POST /crm/v4/associations/{from}/{to}/labels`: `{"label", "name", "inverseLabel"?}`.

    Answers the new type(s) (200): the label, and its inverse when one was given.
    A label the pair has already: 400. Spec: PublicApiSpecs/CRM/Associations
    Schema/Rollouts/130902/v4/associationsSchema.json (PublicAssociationDefinitionCreateRequest).
    """
    hs = _hs(request)
    from_type = _object_type(hs, request.path_params["fromObjectType"])
    to_type = _object_type(hs, request.path_params["toObjectType"])
    body = await _json(request)
    label = body.get("label") if isinstance(body, Mapping) else None
    if not label or not body.get("name"):
        raise _validation("Invalid input JSON: label and name are required")
    if hs.label_id(from_type, to_type, str(label)) is not None:
        raise _validation(
            f"An association label '{label}' already exists from "
            f"{SINGULAR.get(from_type, from_type)} to {SINGULAR.get(to_type, to_type)}."
        )
    inverse_label = body.get("inverseLabel")
    type_id = hs.define_label(from_type, to_type, str(label), inverse_label and str(inverse_label))
    results = _label_specs(hs, from_type, to_type, [type_id])
    if inverse_label:
        results += _label_specs(hs, to_type, from_type, [hs.label_inverse[type_id]])
    return JSONResponse({"results": results})


# ---------------------------------------------------------------- custom object schemas

_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _schema_type(hs: HubSpotState, name: str) -> str:
    resolved = hs.resolve_type(name)
    if resolved is None or resolved not in hs.schemas:
        raise _not_found(f"Unable to find object type {name}")
    return resolved


async def list_schemas(request: Request) -> Response:
    """`GET /crm/v3/schemas` (and `/crm-object-schemas/v3/schemas`): every custom object type.

    Spec: PublicApiSpecs/CRM/Schemas/Rollouts/145900/v3/schemas.json
    (CollectionResponseObjectSchemaNoPaging). None is ever archived here.
    """
    hs = _hs(request)
    if _flag(request, "archived"):
        return JSONResponse({"results": []})
    return JSONResponse({"results": [hs.schema_json(fqn) for fqn in hs.schemas]})


async def get_schema(request: Request) -> Response:
    """`GET /crm/v3/schemas/{objectType}`: by object type id or fully qualified name, else 404.

    Spec: PublicApiSpecs/CRM/Schemas/Rollouts/145900/v3/schemas.json (ObjectSchema).
    """
    hs = _hs(request)
    return JSONResponse(hs.schema_json(_schema_type(hs, request.path_params["objectType"])))


def _check_schema_egg(hs: HubSpotState, body: Any) -> None:
    """Refuse an ObjectSchemaEgg HubSpot would refuse: missing fields, bad names, unknown types."""
    required = ("name", "labels", "properties", "requiredProperties", "associatedObjects")
    if not isinstance(body, Mapping) or any(body.get(k) is None for k in required):
        raise _validation("Invalid input JSON: " + ", ".join(required) + " are required")
    name = str(body["name"])
    if not _SCHEMA_NAME.match(name):
        raise _validation(
            f"Invalid object name '{name}': letters, digits and underscores, starting with a letter"
        )
    if any(s["name"] == name.lower() for s in hs.schemas.values()):
        raise HubSpotError(
            409,
            f"An object type named '{name}' already exists.",
            "OBJECT_ALREADY_EXISTS",
            context={"name": [name]},
        )
    names = {str(p.get("name")) for p in body["properties"] if isinstance(p, Mapping)}
    if len(names) != len(body["properties"]) or "None" in names:
        raise _validation("Invalid input JSON: every property needs a name")
    wanted = [*body["requiredProperties"], *(body.get("searchableProperties") or [])]
    if body.get("primaryDisplayProperty"):
        wanted.append(body["primaryDisplayProperty"])
    unknown = sorted({str(w) for w in wanted} - names)
    if unknown:
        raise _validation(f"Properties {', '.join(unknown)} are not defined on the object")
    for target in body["associatedObjects"]:
        _object_type(hs, str(target))


async def create_schema(request: Request) -> Response:
    """`POST /crm/v3/schemas`: define a custom object type; 201 with its ObjectSchema.

    Spec: PublicApiSpecs/CRM/Schemas/Rollouts/145900/v3/schemas.json (ObjectSchemaEgg:
    name, labels, properties, requiredProperties, associatedObjects required). A taken
    name: 409.
    """
    hs = _hs(request)
    body = await _json(request)
    _check_schema_egg(hs, body)
    schema = hs.add_schema({k: v for k, v in body.items() if k != "objectTypeId"})
    return JSONResponse(hs.schema_json(schema["fullyQualifiedName"]), status_code=201)


# ---------------------------------------------------------------- account info

SANDBOX_PORTAL_ID = PORTAL_ID


async def account_details(request: Request) -> Response:
    """`GET /account-info/v3/details`: the portal id that app.hubspot.com links carry."""
    return JSONResponse(
        {
            "portalId": SANDBOX_PORTAL_ID,
            "accountType": "SANDBOX",
            "timeZone": "Etc/UTC",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "+00:00",
            "utcOffsetMilliseconds": 0,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }
    )


# ---------------------------------------------------------------- routes


def _both(path: str, endpoint: Any, methods: list[str]) -> list[Route]:
    """HubSpot's clients call some collections with a trailing slash; answer both."""
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def routes() -> list[BaseRoute]:
    objects = "/crm/v3/objects/{objectType}"
    props = "/crm/v3/properties/{objectType}"
    assoc = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    labels_published = "/crm/associations/v4/{fromObjectType}/{toObjectType}/labels"
    record_assoc = (
        "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default"
        "/{toObjectType}/{toObjectId}"
    )
    object_assoc = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"
    return [
        *_both(objects + "/batch/read", batch_read, ["POST"]),
        *_both(objects + "/batch/create", batch_create, ["POST"]),
        *_both(objects + "/batch/update", batch_update, ["POST"]),
        *_both(objects + "/search", search_objects, ["POST"]),
        *_both(objects, list_objects, ["GET"]),
        *_both(objects, create_object, ["POST"]),
        Route(objects + "/{objectId}", get_object, methods=["GET"]),
        Route(objects + "/{objectId}", update_object, methods=["PATCH"]),
        Route(objects + "/{objectId}", archive_object, methods=["DELETE"]),
        Route(assoc + "/batch/read", associations_batch_read, methods=["POST"]),
        Route(assoc + "/batch/create", associations_batch_create, methods=["POST"]),
        Route(assoc + "/batch/associate/default", associations_batch_create, methods=["POST"]),
        *_both("/crm/v3/owners", list_owners, ["GET"]),
        Route("/crm/v3/owners/{ownerId}", get_owner, methods=["GET"]),
        *_both(props + "/groups", list_groups, ["GET"]),
        *_both(props + "/groups", create_group, ["POST"]),
        Route(props + "/groups/{groupName}", get_group, methods=["GET"]),
        *_both(props, list_properties, ["GET"]),
        *_both(props, create_property, ["POST"]),
        Route(props + "/{propertyName}", get_property, methods=["GET"]),
        Route(props + "/{propertyName}", update_property, methods=["PATCH"]),
        *_both("/crm/v3/lists", create_list, ["POST"]),
        Route("/crm/v3/lists/search", search_lists, methods=["POST"]),
        Route(
            "/crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}",
            get_list_by_name,
            methods=["GET"],
        ),
        Route("/crm/v3/lists/{listId}", get_list, methods=["GET"]),
        Route("/crm/v3/lists/{listId}/memberships/add", add_members, methods=["PUT"]),
        Route("/crm/v3/lists/{listId}/memberships/remove", remove_members, methods=["PUT"]),
        Route("/crm/v3/lists/{listId}/memberships", list_members, methods=["GET"]),
        Route("/account-info/v3/details", account_details, methods=["GET"]),
        *_both(objects + "/batch/archive", batch_archive, ["POST"]),
        *_both(objects + "/merge", merge_objects, ["POST"]),
        Route(assoc + "/batch/archive", associations_batch_archive, methods=["POST"]),
        Route(assoc + "/batch/labels/archive", associations_batch_archive_labels, methods=["POST"]),
        *_both(assoc + "/labels", list_labels, ["GET"]),
        *_both(assoc + "/labels", create_label, ["POST"]),
        *_both(labels_published, list_labels, ["GET"]),
        *_both(labels_published, create_label, ["POST"]),
        Route(record_assoc, create_default_association, methods=["PUT"]),
        Route(object_assoc + "/{toObjectId}", create_labelled_association, methods=["PUT"]),
        Route(object_assoc + "/{toObjectId}", delete_association, methods=["DELETE"]),
        Route(object_assoc, list_record_associations, methods=["GET"]),
        *[r for base in SCHEMA_BASES for r in _both(base, list_schemas, ["GET"])],
        *[r for base in SCHEMA_BASES for r in _both(base, create_schema, ["POST"])],
        *[Route(base + "/{objectType}", get_schema, methods=["GET"]) for base in SCHEMA_BASES],
    ]
