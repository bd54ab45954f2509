"""Jira: one open issue per (account, rule); later occurrences comment on it.

Before creating, a JQL search by two stable labels (`healthscore-acct-<id>`
and the rule label) finds an open issue of the same account and rule. If it
carries this ledger row's occurrence label (or a comment with it), it is the
row's own earlier write whose acknowledgement was lost: nothing is sent again.
Otherwise the open issue gets a comment instead of a duplicate issue.

Retries: the jira client's `ResilientSession` re-sends a request after a
dropped connection or a 503 (and a 429). Issue and comment creation are only
re-sent after a 429 (`_WriteOnceSession`): Jira has no idempotency key for
them, so after a lost answer the ledger's next attempt searches by the
occurrence label instead of the client doubling the issue.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

from jira import JIRA
from jira.resilientsession import ResilientSession
from requests import Response

from healthscore.errors import VendorError

DEFAULT_MAX_RETRIES = 3
COMMENT_PAGE = 100  # Jira Cloud returns at most 100 comments a page, whatever maxResults says


class JiraActionError(VendorError):
    """A Jira action that cannot be delivered as configured."""


CREATING_POST = re.compile(r"/rest/api/\d+/issue(/[^/]+/comment)?/?$")
"""Issue create and comment create: a second application makes a second issue or comment."""


class _WriteOnceSession(ResilientSession):
    """`ResilientSession` that re-sends a creating POST only after a 429 (nothing applied).

    Overrides the session's retry decision, `__recoverable` (name-mangled in jira 3.x).
    """

    def _ResilientSession__recoverable(  # jira's name-mangled hook
        self,
        response: Exception | Response | None,
        url: str | bytes,
        request_method: str,
        counter: int = 1,
    ) -> bool:
        text = url.decode() if isinstance(url, bytes) else str(url)
        creating = request_method == "POST" and CREATING_POST.search(text.split("?", 1)[0])
        refused = (
            isinstance(response, Response) and response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        )
        if creating and not refused:
            return False
        recoverable: bool = super()._ResilientSession__recoverable(  # type: ignore[misc]
            response, url, request_method, counter
        )
        return recoverable


def jira_client(
    url: str,
    *,
    token: str | None = None,
    email: str | None = None,
    api_token: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 20,
) -> JIRA:
    """`JIRA(server=...)` with a bearer token (Data Center PAT) or email + API token (Cloud).

    Its session re-sends issue and comment creation only after a 429 (module doc).
    """
    if token:
        client = JIRA(server=url, token_auth=token, max_retries=max_retries, timeout=timeout)
    elif email and api_token:
        client = JIRA(
            server=url, basic_auth=(email, api_token), max_retries=max_retries, timeout=timeout
        )
    else:
        raise JiraActionError(
            "no Jira credentials: set JIRA_TOKEN, or JIRA_EMAIL and JIRA_API_TOKEN"
        )
    client._session.__class__ = _WriteOnceSession
    return client


def open_issue_jql(project: str, account_label: str, rule_label: str) -> str:
    return (
        f'project = "{project}" AND labels = "{account_label}" AND labels = "{rule_label}" '
        "AND statusCategory != Done ORDER BY created DESC"
    )


class JiraSender:
    """Creates or comments; returns (issue key, details) for the ledger."""

    def __init__(self, client: JIRA) -> None:
        self.client = client

    def all_comments(self, key: str) -> Iterator[Any]:
        """Every comment of the issue, page by page (`startAt`), oldest first.

        `GET /rest/api/2/issue/{key}/comment` pages (Jira Cloud REST v2 "Get
        comments": `startAt`, `maxResults`, at most 100 on Cloud); reading one
        page would miss the occurrence label on a busy issue and comment twice.
        """
        start = 0
        while True:
            page = self.client.comments(
                key, start_at=start, max_results=COMMENT_PAGE, order_by="created"
            )
            yield from page
            if len(page) < COMMENT_PAGE:  # Cloud and Data Center both serve 100 when asked
                return
            start += len(page)

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
            for comment in self.all_comments(issue.key):
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
