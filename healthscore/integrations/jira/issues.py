"""Jira: one open issue per (account, rule); later occurrences comment on it.

Before creating, a JQL search by two stable labels (`healthscore-acct-<id>`
and the rule label) finds an open issue of the same account and rule. If it
carries this ledger row's occurrence label (or a comment with it), it is the
row's own earlier write whose acknowledgement was lost: nothing is sent again.
Otherwise the open issue gets a comment instead of a duplicate issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jira import JIRA

from healthscore.errors import VendorError

DEFAULT_MAX_RETRIES = 3


class JiraActionError(VendorError):
    """A Jira action that cannot be delivered as configured."""


def jira_client(
    url: str,
    *,
    token: str | None = None,
    email: str | None = None,
    api_token: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 20,
) -> JIRA:
    """`JIRA(server=...)` with a bearer token (Data Center PAT) or email + API token (Cloud)."""
    if token:
        return JIRA(server=url, token_auth=token, max_retries=max_retries, timeout=timeout)
    if email and api_token:
        return JIRA(
            server=url, basic_auth=(email, api_token), max_retries=max_retries, timeout=timeout
        )
    raise JiraActionError("no Jira credentials: set JIRA_TOKEN, or JIRA_EMAIL and JIRA_API_TOKEN")


def open_issue_jql(project: str, account_label: str, rule_label: str) -> str:
    return (
        f'project = "{project}" AND labels = "{account_label}" AND labels = "{rule_label}" '
        "AND statusCategory != Done ORDER BY created DESC"
    )


class JiraSender:
    """Creates or comments; returns (issue key, details) for the ledger."""

    def __init__(self, client: JIRA) -> None:
        self.client = client

    def send(self, payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        occurrence = str(payload["occurrence_label"])
        jql = open_issue_jql(
            str(payload["project"]), str(payload["account_label"]), str(payload["rule_label"])
        )
        found = self.client.search_issues(jql, maxResults=5, fields="labels,status,comment")
        issues = list(found) if found else []
        if issues:
            issue = issues[0]
            labels = list(getattr(issue.fields, "labels", []) or [])
            if occurrence in labels:
                return issue.key, {"issue": issue.key, "created": True, "reconciled": True}
            for comment in self.client.comments(issue.key):
                if occurrence in str(getattr(comment, "body", "")):
                    return issue.key, {
                        "issue": issue.key,
                        "comment": str(comment.id),
                        "reconciled": True,
                    }
            body = f"{payload.get('comment') or payload['description']}\n\n{{{{{occurrence}}}}}"
            comment = self.client.add_comment(issue.key, body)
            return issue.key, {"issue": issue.key, "comment": str(comment.id)}
        labels = [
            *payload.get("labels", []),
            str(payload["account_label"]),
            str(payload["rule_label"]),
            occurrence,
        ]
        fields = {
            "project": {"key": str(payload["project"])},
            "issuetype": {"name": str(payload.get("issue_type") or "Task")},
            "summary": str(payload["summary"]),
            "description": str(payload["description"]),
            "labels": list(dict.fromkeys(labels)),
        }
        issue = self.client.create_issue(fields=fields)
        return issue.key, {"issue": issue.key, "created": True}
