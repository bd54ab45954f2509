"""Slack through slack_sdk's WebClient and Jira through the jira client, unpatched."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from jira import JIRA, JIRAError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from healthscore.sandbox import SandboxUrls, running_sandbox


def _get(url: str) -> Any:
    with urllib.request.urlopen(url) as response:
        return json.load(response)


# ---------------------------------------------------------------- Slack


def test_slack_auth_and_user_lookup(slack: WebClient) -> None:
    assert slack.auth_test()["user_id"]
    user = slack.users_lookupByEmail(email="bo@example.com")["user"]
    assert user["profile"]["email"] == "bo@example.com"
    with pytest.raises(SlackApiError) as caught:
        slack.users_lookupByEmail(email="nobody@example.com")
    assert caught.value.response["error"] == "users_not_found"


def test_slack_post_to_channel_by_name_id_and_dm(slack: WebClient, sandbox: SandboxUrls) -> None:
    by_name = slack.chat_postMessage(channel="#cs-alerts", text="Acme dropped to red")
    by_id = slack.chat_postMessage(
        channel=by_name["channel"],
        text="fallback",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*Acme*"}}],
    )
    assert by_name["channel"] == by_id["channel"] and by_name["ts"] < by_id["ts"]
    user_id = slack.users_lookupByEmail(email="ana@example.com")["user"]["id"]
    dm = slack.conversations_open(users=user_id)["channel"]["id"]
    direct = slack.chat_postMessage(channel=user_id, text="Your account Acme needs you")
    assert direct["channel"] == dm
    with pytest.raises(SlackApiError) as caught:
        slack.chat_postMessage(channel="#nope", text="x")
    assert caught.value.response["error"] == "channel_not_found"
    messages = _get(sandbox.base_url + "/_sandbox/slack/messages")["messages"]
    assert [m["channel_name"] for m in messages] == ["cs-alerts", "cs-alerts", f"@{user_id}"]
    assert messages[1]["blocks"][0]["text"]["text"] == "*Acme*"


def test_slack_conversations_list_pages(slack: WebClient) -> None:
    first = slack.conversations_list(limit=2)
    assert [c["name"] for c in first["channels"]] == ["cs-alerts", "cs-leadership"]
    rest = slack.conversations_list(limit=2, cursor=first["response_metadata"]["next_cursor"])
    assert [c["name"] for c in rest["channels"]] == ["general"]
    assert rest["response_metadata"]["next_cursor"] == ""


def test_slack_users_and_channels_from_the_seed() -> None:
    seed = {
        "slack_users": [{"id": "U42", "email": "cs@example.com", "name": "CS Lead"}],
        "slack_channels": ["#renewals"],
    }
    with running_sandbox(seed) as sandbox:
        client = WebClient(token="xoxb-t", base_url=sandbox.slack_url)
        assert client.users_lookupByEmail(email="cs@example.com")["user"]["id"] == "U42"
        assert client.chat_postMessage(channel="#renewals", text="hi")["ok"]


# ---------------------------------------------------------------- Jira


def test_jira_create_read_comment_transition(jira: JIRA, sandbox: SandboxUrls) -> None:
    issue = jira.create_issue(
        project="CS",
        issuetype={"name": "Task"},
        summary="Acme is at risk",
        description="Score 38 (red)",
        labels=["healthscore", "acct-101"],
    )
    assert issue.key == "CS-1"
    assert issue.fields.status.statusCategory.key == "new"
    assert issue.fields.labels == ["healthscore", "acct-101"]
    jira.add_comment(issue, "Score fell again: 31")
    assert [c.body for c in jira.comments(issue)] == ["Score fell again: 31"]
    names = [t["name"] for t in jira.transitions(issue)]
    assert names == ["In Progress", "Done"]
    jira.transition_issue(issue, "In Progress")
    assert jira.issue("CS-1").fields.status.statusCategory.key == "indeterminate"
    jira.transition_issue(issue, "Done")
    assert jira.issue("CS-1").fields.status.statusCategory.key == "done"
    second = jira.create_issue(
        fields={"project": {"key": "CS"}, "issuetype": {"name": "Task"}, "summary": "Two"}
    )
    assert second.key == "CS-2"
    assert len(_get(sandbox.base_url + "/_sandbox/jira/issues")["issues"]) == 2


def test_jira_create_errors_in_jiras_shape(jira: JIRA) -> None:
    with pytest.raises(JIRAError) as caught:
        jira.create_issue(
            fields={"project": {"key": "CS"}, "issuetype": {"name": "Task"}, "summary": ""}
        )
    assert caught.value.status_code == 400
    assert "summary" in caught.value.response.json()["errors"]
    with pytest.raises(JIRAError) as missing:
        jira.issue("CS-99")
    assert missing.value.status_code == 404


def _open_issues(jira: JIRA) -> None:
    for i in range(7):
        jira.create_issue(
            project="CS",
            issuetype={"name": "Task"},
            summary=f"Account {i}",
            labels=["healthscore", f"acct-{i}"],
        )
    jira.create_issue(project="CS", issuetype={"name": "Bug"}, summary="Other", labels=["other"])
    jira.transition_issue("CS-1", "Done")


def test_jql_search_on_server(jira: JIRA) -> None:
    _open_issues(jira)
    jql = "project = CS AND labels = healthscore AND statusCategory != Done ORDER BY created"
    found = jira.search_issues(jql, maxResults=False)
    assert [i.key for i in found] == [f"CS-{n}" for n in range(2, 8)]
    page = jira.search_issues(jql, startAt=2, maxResults=2)
    assert [i.key for i in page] == ["CS-4", "CS-5"] and page.total == 6
    either = jira.search_issues('project = "CS" AND labels in ("acct-3", acct-5) ORDER BY key DESC')
    assert [i.key for i in either] == ["CS-6", "CS-4"]
    negated = jira.search_issues("project = CS AND NOT (labels = healthscore)")
    assert [i.key for i in negated] == ["CS-8"]
    with pytest.raises(JIRAError) as bad:
        jira.search_issues("project = NOPE")
    assert bad.value.status_code == 400
    with pytest.raises(JIRAError) as syntax:
        jira.search_issues("project = CS AND AND")
    assert syntax.value.status_code == 400


def test_jql_search_on_cloud_uses_next_page_tokens() -> None:
    with running_sandbox(None, jira_deployment_type="Cloud") as sandbox:
        jira = JIRA(server=sandbox.jira_url, basic_auth=("bot@example.com", "api-token"))
        _open_issues(jira)
        jql = "project = CS AND labels = healthscore AND statusCategory != Done ORDER BY created"
        everything = jira.enhanced_search_issues(jql, maxResults=0)
        assert [i.key for i in everything] == [f"CS-{n}" for n in range(2, 8)]
        first = jira.enhanced_search_issues(jql, maxResults=4, json_result=True)
        assert first["isLast"] is False and len(first["issues"]) == 4
        assert first["issues"][0]["fields"]["labels"][0] == "healthscore"  # the client asks *all
        rest = jira.enhanced_search_issues(
            jql, nextPageToken=first["nextPageToken"], maxResults=4, json_result=True
        )
        assert rest["isLast"] is True and len(rest["issues"]) == 2
        request = urllib.request.Request(
            sandbox.jira_url + "/rest/api/3/search/jql?jql=project%3DCS&fields=summary,description",
            headers={"Authorization": "Bearer t"},
        )
        with urllib.request.urlopen(request) as response:
            body = json.load(response)
        assert body["issues"][0]["fields"]["summary"] == "Other"  # no ORDER BY: newest first
