"""HubSpot actions: manual-list membership and tasks for the owner, via `HubSpotConnection`.

List membership is idempotent (adding a member twice changes nothing), so a
retry needs no reconciliation. A task is not: a ledger row that was attempted
before first searches for a task associated with the account with the same
subject and due time (both fixed at plan time) before creating one. HubSpot's
search index lags writes by a few seconds, so a crash within seconds of the
create followed by an immediate retry can still double a task (documented).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from hubspot.crm.lists import ListCreateRequest
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    Filter,
    FilterGroup,
    PublicAssociationsForObject,
    PublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)

from healthscore.errors import VendorError
from healthscore.integrations.hubspot.client import HubSpotConnection

MEMBERSHIP_BATCH = 100
# HubSpot-defined association type ids: task -> company / contact.
TASK_ASSOCIATION_TYPES = {"companies": 192, "contacts": 204}
SINGULAR = {"companies": "company", "contacts": "contact"}


class HubSpotActionError(VendorError):
    """A HubSpot action that cannot be done as configured (e.g. a DYNAMIC list)."""


class AccountInfoError(HubSpotActionError):
    """`account-info` kept answering 429 or 5xx; `status` makes it transient for the task."""

    def __init__(self, status: int) -> None:
        super().__init__(f"account-info (the portal id for record links): HTTP {status}")
        self.status = status


TRANSIENT_STATUS = (429, 500, 502, 503, 504)
RETRY_AFTER_CAP = 60.0
_PORTAL_IDS: dict[tuple[str, str], str] = {}
"""Portal id per (address, token), for this process: it never changes for a token."""


def _retry_after(header: str | None, default: float) -> float:
    """`Retry-After` in seconds (HubSpot sends whole seconds), capped; `default` if absent."""
    try:
        return min(max(float(header or ""), 0.0), RETRY_AFTER_CAP)
    except ValueError:
        return default


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _name_taken(exc: BaseException, object_type_id: str) -> str | None:
    """The conflict, when a create was refused because another object type's list has the name.

    List names are unique across the portal (HubSpot's lists guide; the refusal is
    400 `ILS.LIST_NAME_ALREADY_EXISTS` with `context.objectTypeId`). The same
    object type means our own earlier create whose answer was lost: not a conflict.
    """
    try:
        body = json.loads(str(getattr(exc, "body", "") or ""))
    except json.JSONDecodeError:
        return None
    if not isinstance(body, dict) or body.get("subCategory") != "ILS.LIST_NAME_ALREADY_EXISTS":
        return None
    held_by = [str(t) for t in (body.get("context") or {}).get("objectTypeId") or []]
    if object_type_id in held_by:
        return None
    return (
        f"{body.get('message')} Rename the list in the playbook's action, or rename or "
        "delete the other list in HubSpot."
    )


class HubSpotActions:
    """Lists by name (created when missing, cached per run) and owner tasks."""

    def __init__(self, connection: HubSpotConnection) -> None:
        self.connection = connection
        self._lists: dict[tuple[str, str], str | None] = {}

    @property
    def _api(self) -> Any:
        return self.connection.client

    def portal_id(self, attempts: int = 5) -> str:
        """The portal (hub) id, for links to records: `GET /account-info/v3/details`.

        Asked once per process and address (`_PORTAL_IDS`), through the connection's
        shared rate limiter. `api_request` bypasses the client's urllib3 retries,
        hence the small loop: a 429 holds the limiter off for its `Retry-After`
        seconds (HubSpot's usage guidelines, "Rate limits"); a 5xx or a dropped
        connection waits 0.2, 0.4, 0.8 ... s. The last failure is raised with its
        `status` (`AccountInfoError`, or the connection error), so the task retries it.
        """
        key = (self.connection.base_url.rstrip("/"), self.connection.token)
        if key in _PORTAL_IDS:
            return _PORTAL_IDS[key]
        for attempt in range(attempts):
            try:
                response = self.connection.call(
                    self._api.api_request,
                    {
                        "method": "GET",
                        "path": "/account-info/v3/details",
                        "base_url": self.connection.base_url.rstrip("/"),
                    },
                )
                if response.status_code not in TRANSIENT_STATUS:
                    response.raise_for_status()
                    _PORTAL_IDS[key] = str(response.json()["portalId"])
                    return _PORTAL_IDS[key]
                problem: Exception = AccountInfoError(response.status_code)
                wait = min(0.2 * 2**attempt, 5.0)
                if response.status_code == 429:
                    wait = _retry_after(response.headers.get("Retry-After"), wait)
                    self.connection.burst.hold_off(wait)
                    wait = 0.0  # the limiter waits before the next call
            except requests.ConnectionError as exc:
                problem, wait = exc, min(0.2 * 2**attempt, 5.0)
            if attempt + 1 == attempts:
                raise problem
            time.sleep(wait)
        raise HubSpotActionError("unreachable")  # pragma: no cover

    # -- lists

    def list_id(self, name: str, object_type_id: str, *, create: bool) -> str | None:
        """The id of the list named `name`; a MANUAL list is created if missing and `create`."""
        key = (name.lower(), object_type_id)
        if self._lists.get(key):
            return self._lists[key]
        lists = self._api.crm.lists.lists_api
        try:
            found = self.connection.call(lists.get_by_name, name, object_type_id)
            info = found.list
        except Exception as exc:
            if _status(exc) != 404:
                raise
            info = None
        if info is None and create:
            request = ListCreateRequest(
                name=name, object_type_id=object_type_id, processing_type="MANUAL"
            )
            try:
                info = self.connection.call(lists.create, list_create_request=request).list
            except Exception as exc:  # created by a lost earlier answer: read it again
                if _status(exc) != 400:
                    raise
                taken = _name_taken(exc, object_type_id)
                if taken:
                    raise HubSpotActionError(taken) from None
                info = self.connection.call(lists.get_by_name, name, object_type_id).list
        if info is None:
            self._lists[key] = None
            return None
        if str(info.processing_type) != "MANUAL":
            raise HubSpotActionError(
                f"HubSpot list {name!r} is {info.processing_type}; only MANUAL lists can be "
                "changed by hand"
            )
        self._lists[key] = str(info.list_id)
        return self._lists[key]

    def add_members(self, list_id: str, record_ids: Iterable[str]) -> None:
        ids = sorted(set(record_ids))
        api = self._api.crm.lists.memberships_api
        for start in range(0, len(ids), MEMBERSHIP_BATCH):
            self.connection.call(api.add, list_id, ids[start : start + MEMBERSHIP_BATCH])

    def remove_members(self, list_id: str, record_ids: Iterable[str]) -> None:
        ids = sorted(set(record_ids))
        api = self._api.crm.lists.memberships_api
        for start in range(0, len(ids), MEMBERSHIP_BATCH):
            self.connection.call(api.remove, list_id, ids[start : start + MEMBERSHIP_BATCH])

    def members(self, list_id: str) -> list[str]:
        api = self._api.crm.lists.memberships_api
        out: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 250}
            if after:
                kwargs["after"] = after
            page = self.connection.call(api.get_page, list_id, **kwargs)
            out.extend(str(m.record_id) for m in page.results or [])
            nxt = page.paging.next if page.paging else None
            if nxt is None or not nxt.after:
                return out
            after = str(nxt.after)

    # -- tasks

    def find_task(self, payload: Mapping[str, Any], record_id: str) -> str | None:
        """A task already associated with the record, with this subject and due time."""
        object_type = str(payload.get("object_type") or "companies")
        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(
                            property_name=f"associations.{SINGULAR[object_type]}",
                            operator="EQ",
                            value=record_id,
                        ),
                        Filter(
                            property_name="hs_task_subject",
                            operator="EQ",
                            value=str(payload["subject"]),
                        ),
                        Filter(
                            property_name="hs_timestamp",
                            operator="EQ",
                            value=str(payload["due_ms"]),
                        ),
                    ]
                )
            ],
            properties=["hs_task_subject"],
            limit=1,
        )
        found = self.connection.call(
            self._api.crm.objects.tasks.search_api.do_search,
            public_object_search_request=request,
            search=True,
        )
        results = found.results or []
        return str(results[0].id) if results else None

    def create_task(self, payload: Mapping[str, Any], record_id: str) -> str:
        object_type = str(payload.get("object_type") or "companies")
        properties = {
            "hs_task_subject": str(payload["subject"]),
            "hs_task_body": str(payload.get("body") or ""),
            "hs_timestamp": str(payload["due_ms"]),
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": str(payload.get("priority") or "MEDIUM"),
            "hs_task_type": "TODO",
        }
        if payload.get("owner_id"):
            properties["hubspot_owner_id"] = str(payload["owner_id"])
        association = PublicAssociationsForObject(
            to=PublicObjectId(id=record_id),
            types=[
                AssociationSpec(
                    association_category="HUBSPOT_DEFINED",
                    association_type_id=TASK_ASSOCIATION_TYPES[object_type],
                )
            ],
        )
        created = self.connection.call(
            self._api.crm.objects.tasks.basic_api.create,
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties=properties, associations=[association]
            ),
        )
        return str(created.id)
