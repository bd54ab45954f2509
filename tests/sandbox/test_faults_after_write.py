"""Faults after a write: the write is applied once, then the client gets a drop or a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.objects import SimplePublicObjectInput, SimplePublicObjectInputForCreate
from jira import JIRA, JIRAError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from healthscore.sandbox import SandboxUrls, running_sandbox

from .conftest import api_error, make_seed


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxUrls]:
    with running_sandbox(make_seed()) as urls:
        yield urls


def _after_write(sandbox: SandboxUrls, rate: float, kinds: list[str]) -> None:
    response = httpx.post(
        sandbox.base_url + "/_sandbox/faults-after-write",
        json={"rate": rate, "seed": 7, "kinds": kinds},
    )
    assert response.json() == {"ok": True, "rate": rate, "kinds": kinds}


@pytest.fixture
def hubspot(sandbox: SandboxUrls) -> Iterator[HubSpot]:
    yield HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
    _after_write(sandbox, 0.0, ["drop", "500", "502", "503"])


def test_task_created_then_5xx_is_applied_exactly_once(
    sandbox: SandboxUrls, hubspot: HubSpot
) -> None:
    tasks = hubspot.crm.objects.basic_api
    before = len(tasks.get_page("tasks", limit=100).results)
    _after_write(sandbox, 1.0, ["500"])
    body = SimplePublicObjectInputForCreate(properties={"hs_task_subject": "Renewal call"})
    with api_error(500) as error:
        tasks.create("tasks", body)
    assert error.body["category"] == "INTERNAL_ERROR"
    _after_write(sandbox, 0.0, ["500"])
    after = tasks.get_page("tasks", limit=100, properties=["hs_task_subject"]).results
    assert len(after) == before + 1
    assert [t.properties["hs_task_subject"] for t in after[before:]] == ["Renewal call"]
    stats = httpx.get(sandbox.base_url + "/_sandbox/stats").json()
    assert stats["faults_after_write"] == 1 and stats["faults_after_write_by_kind"] == {"500": 1}


def test_update_then_dropped_connection_is_applied(sandbox: SandboxUrls, hubspot: HubSpot) -> None:
    _after_write(sandbox, 1.0, ["drop"])
    with pytest.raises(Exception) as caught:
        hubspot.crm.companies.basic_api.update(
            "101", SimplePublicObjectInput(properties={"name": "Renamed"})
        )
    assert "Connection" in type(caught.value).__name__ or "closed" in str(caught.value).lower()
    _after_write(sandbox, 0.0, ["drop"])
    company = hubspot.crm.companies.basic_api.get_by_id("101")
    assert company.properties["name"] == "Renamed"


def test_reads_and_refused_writes_are_never_faulted(sandbox: SandboxUrls, hubspot: HubSpot) -> None:
    _after_write(sandbox, 1.0, ["503"])
    assert hubspot.crm.companies.basic_api.get_by_id("102").id == "102"
    with api_error(400) as error:
        hubspot.crm.companies.basic_api.update(
            "102", SimplePublicObjectInput(properties={"nope": "x"})
        )
    assert error.body["category"] == "VALIDATION_ERROR"


def test_slack_post_then_5xx_posts_once(sandbox: SandboxUrls) -> None:
    slack = WebClient(token="xoxb-t", base_url=sandbox.slack_url)
    before = len(httpx.get(sandbox.base_url + "/_sandbox/slack/messages").json()["messages"])
    _after_write(sandbox, 1.0, ["502"])
    with pytest.raises(SlackApiError) as caught:
        slack.chat_postMessage(channel="#cs-alerts", text="Acme is at risk")
    assert caught.value.response.status_code == 502
    assert slack.users_lookupByEmail(email="ana@example.com")["ok"] is True
    _after_write(sandbox, 0.0, ["502"])
    messages = httpx.get(sandbox.base_url + "/_sandbox/slack/messages").json()["messages"]
    assert len(messages) == before + 1 and messages[-1]["text"] == "Acme is at risk"


def test_jira_issue_comment_and_transition_are_applied_before_the_fault(
    sandbox: SandboxUrls,
) -> None:
    jira = JIRA(server=sandbox.jira_url, token_auth="t", max_retries=0)
    _after_write(sandbox, 1.0, ["503"])
    with pytest.raises(JIRAError) as caught:
        jira.create_issue(project="CS", summary="Renewal risk", issuetype={"name": "Task"})
    assert caught.value.status_code == 503
    _after_write(sandbox, 0.0, ["503"])
    issues = httpx.get(sandbox.base_url + "/_sandbox/jira/issues").json()["issues"]
    created = [i for i in issues if i["fields"]["summary"] == "Renewal risk"]
    assert len(created) == 1
    key = created[0]["key"]
    _after_write(sandbox, 1.0, ["500"])
    with pytest.raises(JIRAError):
        jira.add_comment(key, "Called the customer")
    _after_write(sandbox, 0.0, ["500"])
    assert [c.body for c in jira.comments(key)] == ["Called the customer"]
    transition = jira.transitions(key)[0]
    _after_write(sandbox, 1.0, ["500"])
    with pytest.raises(JIRAError):
        jira.transition_issue(key, transition["id"])
    _after_write(sandbox, 0.0, ["500"])
    assert jira.issue(key).fields.status.name == transition["to"]["name"]


def test_faults_after_write_from_the_constructor_are_seeded() -> None:
    outcomes: list[list[int]] = []
    for _ in range(2):
        with running_sandbox(make_seed(), faults_after_write=0.5, fault_seed=3) as urls:
            client = HubSpot(access_token="t", host=urls.hubspot_url, retry=False)
            seen = []
            for i in range(8):
                try:
                    client.crm.companies.basic_api.update(
                        str(101 + i), SimplePublicObjectInput(properties={"name": f"N{i}"})
                    )
                    seen.append(200)
                except Exception as exc:  # the fault: a 5xx or a dropped connection
                    seen.append(getattr(exc, "status", 0) or -1)
            names = [
                client.crm.companies.basic_api.get_by_id(str(101 + i)).properties["name"]
                for i in range(8)
            ]
            assert names == [f"N{i}" for i in range(8)]
            outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert 200 in outcomes[0] and any(code != 200 for code in outcomes[0])


def test_only_drop_and_5xx_may_follow_a_write(sandbox: SandboxUrls) -> None:
    response = httpx.post(
        sandbox.base_url + "/_sandbox/faults-after-write", json={"rate": 1, "kinds": ["429"]}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "after a write only drop, 500, 502 and 503 can be injected"
