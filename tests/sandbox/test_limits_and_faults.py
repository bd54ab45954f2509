"""Authentication, HubSpot's rate limits and injected faults, seen by the real clients."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from typing import Any

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)
from jira import JIRA, JIRAError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from urllib3.util import Retry

from healthscore.sandbox import Fault, SandboxUrls, running_sandbox

from .conftest import COMPANY_COUNT, api_error, make_seed

RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


def _retrying_client(sandbox: SandboxUrls) -> HubSpot:
    retry = Retry(
        total=10,
        backoff_factor=0.01,
        status_forcelist=(429, 500, 502, 503),
        allowed_methods=None,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    return HubSpot(access_token="t", host=sandbox.hubspot_url, retry=retry)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def test_missing_token_is_401_in_each_vendors_shape(sandbox: SandboxUrls) -> None:
    client = HubSpot(host=sandbox.hubspot_url)
    with api_error(401) as error:
        client.crm.companies.basic_api.get_page()
    assert error.body["category"] == "INVALID_AUTHENTICATION"
    assert error.body["message"].startswith("Authentication credentials not found")
    with pytest.raises(SlackApiError) as slack_error:
        WebClient(base_url=sandbox.slack_url).auth_test()
    assert slack_error.value.response["error"] == "not_authed"
    with pytest.raises(JIRAError) as jira_error:
        JIRA(server=sandbox.jira_url).issue("CS-1")
    assert jira_error.value.status_code == 401


def test_token_in_slack_form_body_is_accepted(sandbox: SandboxUrls) -> None:
    data = b"token=xoxb-form&email=ana%40example.com"
    request = urllib.request.Request(sandbox.slack_url + "users.lookupByEmail", data=data)
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["ok"] is True


def test_successful_responses_carry_rate_limit_headers(sandbox: SandboxUrls) -> None:
    client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
    _, status, headers = client.crm.companies.basic_api.get_page_with_http_info(limit=1)
    assert status == 200
    assert all(h in headers for h in RATE_HEADERS)
    assert headers["X-HubSpot-RateLimit-Max"] == "190"
    assert int(headers["X-HubSpot-RateLimit-Remaining"]) == 189


def test_ten_second_limit_answers_429_with_headers_per_token() -> None:
    with running_sandbox(make_seed(), rate_limit=3) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
        for _ in range(3):
            client.crm.companies.basic_api.get_page(limit=1)
        with pytest.raises(Exception) as caught:
            client.crm.companies.basic_api.get_page(limit=1)
        error: Any = caught.value
        assert error.status == 429
        headers = error.headers
        assert all(h in headers for h in RATE_HEADERS)
        assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert 1 <= int(headers["Retry-After"]) <= 10
        body = json.loads(error.body)
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["correlationId"]
        # another token has its own window
        HubSpot(access_token="other", host=sandbox.hubspot_url).crm.companies.basic_api.get_page()
        assert _get(sandbox.base_url + "/_sandbox/stats")["rate_limited"] == 1


def test_daily_limit() -> None:
    with running_sandbox(make_seed(), daily_limit=2) as sandbox:
        client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=False)
        client.crm.companies.basic_api.get_page(limit=1)
        _, _, headers = client.crm.companies.basic_api.get_page_with_http_info(limit=1)
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
        with api_error(429) as error:
            client.crm.companies.basic_api.get_page(limit=1)
        assert error.body["policyName"] == "DAILY"


def test_retrying_client_gets_correct_results_through_ten_percent_faults() -> None:
    with running_sandbox(make_seed(), faults=0.1, fault_seed=7, slow_seconds=0.05) as sandbox:
        client = _retrying_client(sandbox)
        ids: list[str] = []
        after = None
        while True:
            page = client.crm.companies.basic_api.get_page(limit=10, after=after)
            ids.extend(r.id for r in page.results)
            if page.paging is None:
                break
            after = page.paging.next.after
        assert ids == [str(100 + i) for i in range(1, COMPANY_COUNT + 1)]
        for i in range(1, 21):
            client.crm.companies.batch_api.update(
                BatchInputSimplePublicObjectBatchInput(
                    inputs=[{"id": str(100 + i), "properties": {"seats_purchased": f"{i}0"}}]
                )
            )
        at_least_100 = {"propertyName": "seats_purchased", "operator": "GTE", "value": "100"}
        result = client.crm.objects.search_api.do_search(
            "companies",
            PublicObjectSearchRequest(
                filter_groups=[{"filters": [at_least_100]}],
                limit=200,
            ),
        )
        assert result.total == COMPANY_COUNT - 99 + 11  # 100..250 plus the ten now 100..200
        stats = _get(sandbox.base_url + "/_sandbox/stats")
        assert stats["faults_injected"] >= 3
        assert set(stats["faults_by_kind"]) <= {f.value for f in Fault}


def test_dropped_connection_is_a_connection_error_for_the_client(sandbox: SandboxUrls) -> None:
    sandbox.limits.set_faults(1.0, 0, [Fault.DROP])
    retry = Retry(total=1, backoff_factor=0, allowed_methods=None)
    client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=retry)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
        client.crm.companies.basic_api.get_page(limit=1)
    assert isinstance(caught.value.reason, urllib3.exceptions.ProtocolError)
    assert "Remote end closed connection without response" in str(caught.value.reason)
    slack = WebClient(token="xoxb-t", base_url=sandbox.slack_url, retry_handlers=[])
    with pytest.raises(Exception) as slack_error:  # urllib's RemoteDisconnected / URLError
        slack.auth_test()
    assert "closed connection" in str(slack_error.value) or "Remote" in repr(slack_error.value)


@pytest.mark.parametrize("kind", [Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE])
def test_a_faulted_write_is_not_applied(sandbox: SandboxUrls, kind: Fault) -> None:
    sandbox.limits.set_faults(1.0, 0, [kind])
    client = HubSpot(access_token="t", host=sandbox.hubspot_url, retry=Retry(total=0))
    with api_error(int(kind.value)) as error:
        client.crm.companies.basic_api.update(
            "101", SimplePublicObjectInput(properties={"seats_purchased": "999"})
        )
    assert error.body["status"] == "error"
    assert sandbox.state.hubspot.objects["companies"]["101"].properties["seats_purchased"] == "1"


def test_injected_429_in_each_vendors_shape(sandbox: SandboxUrls) -> None:
    sandbox.limits.set_faults(1.0, 0, [Fault.RATE_LIMITED])
    with api_error(429) as error:
        HubSpot(
            access_token="t", host=sandbox.hubspot_url, retry=False
        ).crm.companies.basic_api.get_page()
    assert error.body["errorType"] == "RATE_LIMIT"
    with pytest.raises(SlackApiError) as slack_error:
        WebClient(token="xoxb-t", base_url=sandbox.slack_url).auth_test()
    assert slack_error.value.response.status_code == 429
    assert slack_error.value.response["error"] == "ratelimited"
    assert slack_error.value.response.headers["retry-after"] == "1"


def test_slack_client_retries_through_ratelimited(sandbox: SandboxUrls) -> None:
    sandbox.limits.set_faults(0.3, 3, [Fault.RATE_LIMITED])
    client = WebClient(
        token="xoxb-t",
        base_url=sandbox.slack_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=10)],
    )
    assert client.chat_postMessage(channel="#general", text="hello")["ok"] is True
    assert len(sandbox.state.slack.messages) == 1


def test_faults_never_touch_the_inspection_endpoints(sandbox: SandboxUrls) -> None:
    sandbox.limits.set_faults(1.0, 0, [Fault.DROP])
    for _ in range(5):
        assert "calls" in _get(sandbox.base_url + "/_sandbox/stats")


def test_faults_are_reproducible_from_the_seed() -> None:
    def kinds(seed: int) -> list[str]:
        with running_sandbox(make_seed(), faults=0.5, fault_seed=seed, slow_seconds=0) as sb:
            client = HubSpot(access_token="t", host=sb.hubspot_url, retry=Retry(total=0))
            for _ in range(12):
                with contextlib.suppress(Exception):
                    client.crm.companies.basic_api.get_page(limit=1)
            return [k for k, n in sorted(sb.limits.stats.faults.items()) for _ in range(n)]

    assert kinds(11) == kinds(11)
