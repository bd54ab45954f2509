"""Jira sandbox fidelity through the real `jira` client, on Cloud and on Data Center:
comment and search page caps, create-issue refusals, project lookups and createmeta."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from jira import JIRA, JIRAError

from healthscore.sandbox import SandboxUrls, running_sandbox

SEED = {
    "jira_projects": [
        {"key": "OPS", "name": "Operations", "issue_types": ["Bug"]},
        {"key": "RO", "name": "Read only", "can_create": False},
    ]
}
COMMENTS = 150


def _post(urls: SandboxUrls, path: str, body: dict[str, Any]) -> Any:
    """Bulk set-up over plain HTTP: many times faster than the jira client per call."""
    request = urllib.request.Request(
        urls.jira_url + "/rest/api/2/" + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def _create(urls: SandboxUrls, project: str, issue_type: str, summary: str) -> str:
    fields = {"project": {"key": project}, "issuetype": {"name": issue_type}, "summary": summary}
    return str(_post(urls, "issue", {"fields": fields})["key"])


def _with_comments(urls: SandboxUrls) -> str:
    key = _create(urls, "CS", "Task", "Chatty")
    for i in range(COMMENTS):
        _post(urls, f"issue/{key}/comment", {"body": f"c{i}"})
    return key


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[SandboxUrls, JIRA, str]]:
    with running_sandbox(SEED, jira_deployment_type="Cloud") as urls:
        jira = JIRA(server=urls.jira_url, basic_auth=("bot@example.com", "api-token"))
        yield urls, jira, _with_comments(urls)


@pytest.fixture(scope="module")
def dc() -> Iterator[tuple[SandboxUrls, JIRA, str]]:
    with running_sandbox(SEED) as urls:
        jira = JIRA(server=urls.jira_url, token_auth="pat")
        yield urls, jira, _with_comments(urls)


def _raw(urls: SandboxUrls, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        urls.jira_url + path, headers={"Authorization": "Bearer t", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    with pytest.raises(JIRAError) as caught:
        call(*args, **kwargs)
    return caught.value.status_code, caught.value.response.json()


# ---------------------------------------------------------------- comment pages


def test_cloud_comments_reads_only_the_first_page_of_100(
    cloud: tuple[SandboxUrls, JIRA, str],
) -> None:
    urls, jira, key = cloud
    first = jira.comments(key)
    assert len(first) == 100 and first[0].body == "c0" and first[-1].body == "c99"
    assert len(jira.comments(key, max_results=500)) == 100  # the cap, not the ask
    everything = []
    while True:
        page = jira.comments(key, start_at=len(everything), max_results=100)
        everything += [c.body for c in page]
        if len(page) < 100:
            break
    assert everything == [f"c{i}" for i in range(COMMENTS)]
    status, body = _raw(urls, f"/rest/api/2/issue/{key}/comment?startAt=100")
    assert status == 200
    assert (body["startAt"], body["maxResults"], body["total"]) == (100, 100, COMMENTS)
    assert len(body["comments"]) == 50


def test_data_center_comments_returns_them_all(dc: tuple[SandboxUrls, JIRA, str]) -> None:
    urls, jira, key = dc
    assert [c.body for c in jira.comments(key)] == [f"c{i}" for i in range(COMMENTS)]
    status, body = _raw(urls, f"/rest/api/2/issue/{key}/comment?startAt=140&maxResults=5")
    assert (status, body["startAt"], body["maxResults"], body["total"]) == (200, 140, 5, COMMENTS)
    assert [c["body"] for c in body["comments"]] == [f"c{i}" for i in range(140, 145)]


def test_comment_order(dc: tuple[SandboxUrls, JIRA, str]) -> None:
    urls, jira, key = dc
    newest = jira.comments(key, order_by="-created", max_results=2)
    assert [c.body for c in newest] == ["c149", "c148"]
    status, _ = _raw(urls, f"/rest/api/2/issue/{key}/comment?orderBy=updated")
    assert status == 400


# ---------------------------------------------------------------- search pages


def test_search_page_caps_per_deployment(
    cloud: tuple[SandboxUrls, JIRA, str], dc: tuple[SandboxUrls, JIRA, str]
) -> None:
    for (urls, _, _), cap in ((cloud, 100), (dc, 1000)):
        status, body = _raw(urls, "/rest/api/2/search?jql=project%3DCS&maxResults=5000")
        assert (status, body["maxResults"], body["total"]) == (200, cap, 1)


def test_cloud_jql_search_pages_100_unless_only_ids(cloud: tuple[SandboxUrls, JIRA, str]) -> None:
    urls, jira, _ = cloud
    for i in range(110):
        _create(urls, "OPS", "Bug", f"b{i}")
    path = "/rest/api/3/search/jql?jql=project%3DOPS&maxResults=5000"
    _, wide = _raw(urls, path + "&fields=summary")
    assert len(wide["issues"]) == 100 and wide["isLast"] is False
    assert wide["nextPageToken"] == "100"
    _, slim = _raw(urls, path + "&fields=id")
    assert len(slim["issues"]) == 110 and slim["isLast"] is True and "nextPageToken" not in slim
    assert len(jira.enhanced_search_issues("project = OPS", maxResults=0)) == 110


# ---------------------------------------------------------------- create refusals


@pytest.mark.parametrize(
    ("fields", "errors_by_deployment"),
    [
        (
            {"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "s"},
            ({"project": "Specify a valid project ID or key"},
             {"project": "project is required"}),
        ),
        (
            {"project": {"key": "CS"}, "issuetype": {"name": "Nope"}, "summary": "s"},
            ({"issuetype": "The issue type selected is invalid."},
             {"issuetype": "valid issue type is required"}),
        ),
        (  # OPS offers Bug only
            {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"},
            ({"issuetype": "The issue type selected is invalid."},
             {"issuetype": "valid issue type is required"}),
        ),
    ],
)  # fmt: skip
def test_unknown_project_and_issue_type(
    cloud: tuple[SandboxUrls, JIRA, str],
    dc: tuple[SandboxUrls, JIRA, str],
    fields: dict[str, Any],
    errors_by_deployment: tuple[dict[str, str], dict[str, str]],
) -> None:
    for (_, jira, _), errors in zip((cloud, dc), errors_by_deployment, strict=True):
        assert _refused(jira.create_issue, fields=fields) == (
            400,
            {"errorMessages": [], "errors": errors},
        )


def test_text_limits_and_labels(dc: tuple[SandboxUrls, JIRA, str]) -> None:
    _, jira, _ = dc
    base = {"project": {"key": "CS"}, "issuetype": {"name": "Task"}}
    status, body = _refused(
        jira.create_issue,
        fields={
            **base,
            "summary": "s" * 256,
            "description": "d" * 32_768,
            "labels": ["healthscore", "at risk"],
        },
    )
    assert status == 400 and body == {
        "errorMessages": [],
        "errors": {
            "summary": "Summary must be less than 255 characters.",
            "description": "The entered text is too long. "
            "It exceeds the allowed limit of 32,767 characters.",
            "labels": "The label 'at risk' contains spaces which is invalid.",
        },
    }
    at_limits = jira.create_issue(
        fields={**base, "summary": "s" * 255, "description": "d" * 32_767, "labels": ["a-b"]}
    )
    assert len(jira.issue(at_limits.key).fields.summary) == 255


def test_unknown_project_is_404_and_no_auth_is_401(dc: tuple[SandboxUrls, JIRA, str]) -> None:
    urls, jira, _ = dc
    assert _refused(jira.project, "NOPE") == (
        404,
        {"errorMessages": ["No project could be found with key 'NOPE'."], "errors": {}},
    )
    anonymous = JIRA(server=urls.jira_url)
    assert _refused(anonymous.project, "CS") == (
        401,
        {"errorMessages": ["You are not authenticated. Authentication required."], "errors": {}},
    )


# ---------------------------------------------------------------- create metadata


def test_project_and_createmeta_issue_types_on_data_center(
    dc: tuple[SandboxUrls, JIRA, str],
) -> None:
    _, jira, _ = dc
    assert [t.name for t in jira.project("OPS").issueTypes] == ["Bug"]
    assert [t.name for t in jira.project_issue_types("OPS")] == ["Bug"]
    assert [t.name for t in jira.project_issue_types("CS")] == [
        "Epic", "Story", "Task", "Sub-task", "Bug",
    ]  # fmt: skip
    fields = {f.fieldId: f.required for f in jira.project_issue_fields("CS", "10002")}
    assert fields == {
        "summary": True, "issuetype": True, "project": True,
        "description": False, "labels": False,
    }  # fmt: skip
    assert _refused(jira.project_issue_types, "NOPE")[0] == 404
    assert _refused(jira.project_issue_fields, "OPS", "10002")[0] == 404


def test_createmeta_on_cloud(cloud: tuple[SandboxUrls, JIRA, str]) -> None:
    urls, jira, _ = cloud
    assert [t.name for t in jira.project("OPS").issueTypes] == ["Bug"]
    status, body = _raw(urls, "/rest/api/2/issue/createmeta/OPS/issuetypes")
    assert status == 200
    assert (body["startAt"], body["maxResults"], body["total"]) == (0, 50, 1)
    assert [t["name"] for t in body["issueTypes"]] == ["Bug"]
    status, body = _raw(urls, "/rest/api/2/issue/createmeta/CS/issuetypes?maxResults=201")
    assert (status, body) == (
        400,
        {"errorMessages": ["Parameter 'maxResults' must not exceed the limit '200'"], "errors": {}},
    )
    _, fields = _raw(urls, "/rest/api/2/issue/createmeta/CS/issuetypes/10002")
    assert [f["fieldId"] for f in fields["fields"] if f["required"]] == [
        "summary", "issuetype", "project",
    ]  # fmt: skip


# ---------------------------------------------------------------- permissions


def test_no_create_permission_is_403_and_mypermissions_says_so(
    cloud: tuple[SandboxUrls, JIRA, str],
) -> None:
    _, jira, _ = cloud
    fields = {"project": {"key": "RO"}, "issuetype": {"name": "Task"}, "summary": "s"}
    assert _refused(jira.create_issue, fields=fields) == (
        403,
        {"errorMessages": ["You do not have permission to create issues in this project."],
         "errors": {}},
    )  # fmt: skip
    wanted = "BROWSE_PROJECTS,CREATE_ISSUES"
    granted = jira.my_permissions(projectKey="RO", permissions=wanted)["permissions"]
    assert {k: v["havePermission"] for k, v in granted.items()} == {
        "BROWSE_PROJECTS": True,
        "CREATE_ISSUES": False,
    }
    assert (
        jira.my_permissions(projectKey="CS", permissions=wanted)["permissions"]["CREATE_ISSUES"][
            "havePermission"
        ]
        is True
    )
    assert _refused(jira.my_permissions, projectKey="CS")[0] == 400  # Cloud requires the keys
    assert _refused(jira.my_permissions, projectKey="NOPE", permissions=wanted)[0] == 404
