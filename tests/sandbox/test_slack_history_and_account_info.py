"""Sandbox additions for the actions: message metadata, conversations.history, account-info."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from hubspot import HubSpot
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from healthscore.sandbox import SandboxUrls

METADATA = {"event_type": "healthscore_action", "event_payload": {"ledger_key": "k1"}}


def test_metadata_is_returned_only_when_asked(slack: WebClient) -> None:
    posted = slack.chat_postMessage(channel="#cs-alerts", text="one", metadata=METADATA)
    channel = posted["channel"]
    plain = slack.conversations_history(channel=channel)["messages"]
    assert [m["text"] for m in plain] == ["one"] and "metadata" not in plain[0]
    full = slack.conversations_history(channel=channel, include_all_metadata=True)["messages"]
    assert full[0]["metadata"] == METADATA
    assert full[0]["ts"] == posted["ts"]


def test_history_is_newest_first_bounded_and_paged(slack: WebClient) -> None:
    stamps = [slack.chat_postMessage(channel="#general", text=f"m{i}")["ts"] for i in range(5)]
    channel = slack.conversations_list()["channels"][2]["id"]
    first = slack.conversations_history(channel=channel, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    cursor = first["response_metadata"]["next_cursor"]
    second = slack.conversations_history(channel=channel, limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    after = slack.conversations_history(channel=channel, oldest=stamps[2])["messages"]
    assert [m["text"] for m in after] == ["m4", "m3"]  # oldest is exclusive
    inclusive = slack.conversations_history(channel=channel, oldest=stamps[2], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["m4", "m3", "m2"]


def test_history_of_a_dm_and_unknown_channel(slack: WebClient) -> None:
    user = slack.users_lookupByEmail(email="ana@example.com")["user"]["id"]
    dm = slack.conversations_open(users=user)["channel"]["id"]
    slack.chat_postMessage(channel=dm, text="hello Ana")
    assert [m["text"] for m in slack.conversations_history(channel=dm)["messages"]] == ["hello Ana"]
    with pytest.raises(SlackApiError) as caught:
        slack.conversations_history(channel="C404")
    assert caught.value.response["error"] == "channel_not_found"


def test_bad_metadata_is_refused(slack: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        slack.chat_postMessage(channel="#general", text="x", metadata={"event_payload": {}})
    assert caught.value.response["error"] == "invalid_metadata_schema"


def test_account_info_details(sandbox: SandboxUrls, hubspot: HubSpot) -> None:
    response = hubspot.api_request(
        {"method": "GET", "path": "/account-info/v3/details", "base_url": sandbox.hubspot_url}
    )
    assert response.status_code == 200
    assert response.json()["portalId"] == 12345678
    request = urllib.request.Request(sandbox.hubspot_url + "/account-info/v3/details")
    with pytest.raises(urllib.error.HTTPError) as caught:  # like HubSpot: a token is needed
        urllib.request.urlopen(request)
    body: Any = json.loads(caught.value.read())
    assert caught.value.code == 401 and body["category"] == "INVALID_AUTHENTICATION"
