"""Fixtures for the sandbox tests: a seed, a running sandbox and the real clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hubspot import HubSpot
from jira import JIRA
from slack_sdk import WebClient

from healthscore.sandbox import SandboxUrls, running_sandbox

COMPANY_COUNT = 250


def make_seed() -> dict[str, Any]:
    """250 companies (ids 101..350), contacts and engagements associated with the first ones."""
    companies = [
        {
            "id": str(100 + i),
            "properties": {
                "name": f"Company {i:03d}",
                "domain": f"c{i}.example.com",
                "hubspot_owner_id": "1" if i % 2 else "2",
                "seats_purchased": str(i),
                "renewal_date": f"2026-{(i % 12) + 1:02d}-15",
                "createdate": f"2025-01-{(i % 28) + 1:02d}T10:00:00Z",
            },
        }
        for i in range(1, COMPANY_COUNT + 1)
    ]
    contacts = [
        {
            "id": str(1000 + i),
            "properties": {"email": f"p{i}@c1.example.com", "nps_category": "promoter"},
            "associations": {"companies": ["101"]},
        }
        for i in range(3)
    ]
    meetings = [
        {
            "id": "2001",
            "properties": {
                "hs_timestamp": "2026-10-01T10:00:00Z",
                "hs_meeting_outcome": "COMPLETED",
            },
            "associations": {"companies": ["101", "102"]},
        }
    ]
    return {
        "owners": [
            {"id": "1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Ruiz"},
            {"id": "2", "email": "bo@example.com", "firstName": "Bo", "lastName": "Chen"},
        ],
        "companies": companies,
        "contacts": contacts,
        "meetings": meetings,
        "tickets": [],
        "tasks": [],
    }


@pytest.fixture
def seed() -> dict[str, Any]:
    return make_seed()


@pytest.fixture
def sandbox(seed: dict[str, Any]) -> Iterator[SandboxUrls]:
    with running_sandbox(seed) as urls:
        yield urls


@pytest.fixture
def hubspot(sandbox: SandboxUrls) -> HubSpot:
    return HubSpot(access_token="test-token", host=sandbox.hubspot_url)


@pytest.fixture
def slack(sandbox: SandboxUrls) -> WebClient:
    return WebClient(token="xoxb-test", base_url=sandbox.slack_url)


@pytest.fixture
def jira(sandbox: SandboxUrls) -> JIRA:
    return JIRA(server=sandbox.jira_url, token_auth="test-token")


class ApiErrorInfo:
    """What a hubspot-api-client ApiException carried: status and the JSON body."""

    status: int = 0
    body: dict[str, Any] = {}  # noqa: RUF012


@contextmanager
def api_error(status: int) -> Iterator[ApiErrorInfo]:
    """Expect one of hubspot-api-client's ApiException classes (one per API package)."""
    info = ApiErrorInfo()
    with pytest.raises(Exception) as caught:
        yield info
    assert type(caught.value).__name__.endswith("Exception")
    info.status = getattr(caught.value, "status", 0)
    raw = getattr(caught.value, "body", None)
    info.body = json.loads(raw) if raw else {}
    assert info.status == status, (info.status, info.body)
