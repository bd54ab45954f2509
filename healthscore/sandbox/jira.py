"""Jira REST API v2 (and the v3 JQL search) for the `jira` client, at Jira's paths.

Covers what `JIRA(server=...)` calls on start (serverInfo), project and issue
type lookups that `create_issue` makes, issues, comments, transitions through
a To Do -> In Progress -> Done workflow, and JQL search both the Server way
(`/search`, startAt/total) and the Cloud way (`/search/jql`, nextPageToken).
Errors come back as Jira's `{"errorMessages": [...], "errors": {...}}`.

Sources: the Jira Cloud platform REST OpenAPI spec (Atlassian's `swagger-v3.v3.json`,
as published at developer.atlassian.com; copy read: jarekbird/jira-api-mcp-wrapper
`swagger-v3.v3.json`, 2025), whose v3 paths are the v2 ones with ADF bodies; Jira
Data Center's REST reference for `/search` and `createmeta`; and the error texts
Jira servers answer, quoted in public issue threads where the spec gives none.
Where Cloud and Data Center differ (page caps, messages) `deploymentType` decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import jql
from .state import JiraState, SandboxState
from .timefmt import jira_iso, utc_now

STATUS_CATEGORIES: dict[str, dict[str, Any]] = {
    "new": {"id": 2, "key": "new", "name": "To Do", "colorName": "blue-gray"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "name": "In Progress",
        "colorName": "yellow",
    },
    "done": {"id": 3, "key": "done", "name": "Done", "colorName": "green"},
}
STATUSES: dict[str, dict[str, str]] = {
    "To Do": {"id": "10000", "name": "To Do", "category": "new"},
    "In Progress": {"id": "3", "name": "In Progress", "category": "indeterminate"},
    "Done": {"id": "10001", "name": "Done", "category": "done"},
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
ISSUE_TYPES: dict[str, dict[str, Any]] = {
    "10000": {"name": "Epic", "subtask": False},
    "10001": {"name": "Story", "subtask": False},
    "10002": {"name": "Task", "subtask": False},
    "10003": {"name": "Sub-task", "subtask": True},
    "10004": {"name": "Bug", "subtask": False},
}
USER = {
    "name": "healthscore",
    "key": "healthscore",
    "accountId": "5b10a2844c20165700ede21g",
    "displayName": "Healthscore Bot",
    "emailAddress": "healthscore@example.com",
    "active": True,
    "timeZone": "Etc/UTC",
}
SYSTEM_FIELDS = [
    ("summary", "Summary", "string", ["summary"]),
    ("description", "Description", "string", ["description"]),
    ("labels", "Labels", "array", ["labels"]),
    ("project", "Project", "project", ["project"]),
    ("issuetype", "Issue Type", "issuetype", ["issuetype", "type"]),
    ("status", "Status", "status", ["status"]),
    ("created", "Created", "datetime", ["created", "createdDate"]),
    ("updated", "Updated", "datetime", ["updated", "updatedDate"]),
    ("comment", "Comment", "comments-page", ["comment"]),
    ("priority", "Priority", "priority", ["priority"]),
    ("resolution", "Resolution", "resolution", ["resolution"]),
    ("resolutiondate", "Resolved", "datetime", ["resolved", "resolutiondate"]),
    ("assignee", "Assignee", "user", ["assignee"]),
    ("reporter", "Reporter", "user", ["reporter"]),
]
JQL_FIELDS = {
    "project", "labels", "status", "statuscategory", "issuetype", "type", "summary",
    "description", "text", "key", "issuekey", "id", "created", "createddate", "updated",
    "updateddate", "resolution", "assignee", "reporter", "priority",
}  # fmt: skip


# Page caps. Cloud: comments default and cap 100 (spec: getComments `maxResults`
# default 100), `/search` 100, `/search/jql` 5000 for id/key-only pages and 100
# otherwise (spec: "It returns max 5000 issues"), createmeta 200 (spec `maximum`).
# Data Center: `/search` 1000 (`jira.search.views.default.max`), comments all (5000).
CLOUD_COMMENT_PAGE = 100
DC_COMMENT_PAGE = 5000
CLOUD_SEARCH_PAGE = 100
DC_SEARCH_PAGE = 1000
JQL_ID_PAGE = 5000
CREATEMETA_PAGE = 200
# Project permissions a doctor asks about: key -> (id, name, description), Jira's built-ins.
PERMISSIONS = {
    "BROWSE_PROJECTS": ("10", "Browse Projects", "Ability to browse projects and issues."),
    "CREATE_ISSUES": ("11", "Create Issues", "Ability to create issues."),
    "ADD_COMMENTS": ("15", "Add Comments", "Ability to comment on issues."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "Ability to transition issues."),
}
NO_CREATE = "You do not have permission to create issues in this project."
SUMMARY_MAX = 255
TEXT_FIELD_MAX = 32_767
COMMENT_ORDERS = ("created", "+created", "-created")


class JiraApiError(Exception):
    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("; ".join(messages or []) or json.dumps(dict(errors or {})))
        self.status = status
        self.messages = messages or []
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"errorMessages": self.messages, "errors": self.errors},
            status_code=self.status,
            headers=self.headers,
        )


def unauthorized() -> JSONResponse:
    return JiraApiError(401, ["You are not authenticated. Authentication required."]).response()


def rate_limited(retry_after: int = 1) -> JSONResponse:
    return JiraApiError(
        429, ["Rate limit exceeded."], headers={"Retry-After": str(retry_after)}
    ).response()


def server_error(status: int) -> JSONResponse:
    return JiraApiError(status, ["Internal server error"]).response()


def _jira(request: Request) -> JiraState:
    state: SandboxState = request.app.state.sandbox
    return state.jira


def _cloud(request: Request) -> bool:
    state: SandboxState = request.app.state.sandbox
    return state.jira_deployment_type == "Cloud"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _api(request: Request) -> str:
    return f"{_base(request)}/rest/api/{request.path_params.get('version', '2')}"


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise JiraApiError(400, ["Unexpected character in the request body."]) from None


def project_issue_types(project: Mapping[str, Any]) -> list[str]:
    """Ids of the issue types the project offers (seed `issue_types` names; default all)."""
    names = project.get("issue_types")
    if not names:
        return list(ISSUE_TYPES)
    wanted = {str(n).lower() for n in names}
    return [i for i, t in ISSUE_TYPES.items() if t["name"].lower() in wanted]


def _project_json(
    request: Request, project: Mapping[str, Any], with_types: bool = False
) -> dict[str, Any]:
    body = {
        "self": f"{_api(request)}/project/{project['id']}",
        "id": project["id"],
        "key": project["key"],
        "name": project["name"],
        "projectTypeKey": "software",
    }
    if with_types:
        body["issueTypes"] = [_issue_type_json(request, i) for i in project_issue_types(project)]
    return body


def _issue_type_json(request: Request, type_id: str) -> dict[str, Any]:
    info = ISSUE_TYPES[type_id]
    return {
        "self": f"{_api(request)}/issuetype/{type_id}",
        "id": type_id,
        "name": info["name"],
        "subtask": info["subtask"],
        "description": "",
    }


def _status_json(request: Request, name: str) -> dict[str, Any]:
    status = STATUSES[name]
    category = STATUS_CATEGORIES[status["category"]]
    return {
        "self": f"{_api(request)}/status/{status['id']}",
        "id": status["id"],
        "name": name,
        "statusCategory": {
            "self": f"{_api(request)}/statuscategory/{category['id']}",
            **category,
        },
    }


def _comment_json(
    request: Request, issue: Mapping[str, Any], comment: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "self": f"{_api(request)}/issue/{issue['id']}/comment/{comment['id']}",
        "id": comment["id"],
        "author": USER,
        "updateAuthor": USER,
        "body": comment["body"],
        "created": jira_iso(comment["created"]),
        "updated": jira_iso(comment["created"]),
    }


def _adf(text: str | None) -> dict[str, Any] | None:
    """Jira Cloud's v3 API returns rich text as Atlassian Document Format."""
    if text is None:
        return None
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


def issue_json(
    request: Request, issue: Mapping[str, Any], fields: list[str] | None = None
) -> dict[str, Any]:
    """An issue as Jira returns it; `fields` like the `fields` query parameter."""
    jira_state = _jira(request)
    project = jira_state.projects[issue["project"]]
    status_name = issue["status"]
    done = STATUSES[status_name]["category"] == "done"
    v3 = str(request.path_params.get("version")) == "3"
    comments = [_comment_json(request, issue, c) for c in issue["comments"]]
    all_fields: dict[str, Any] = {
        "summary": issue["summary"],
        "description": _adf(issue["description"]) if v3 else issue["description"],
        "labels": list(issue["labels"]),
        "project": _project_json(request, project),
        "issuetype": _issue_type_json(request, issue["issuetype"]),
        "status": _status_json(request, status_name),
        "created": jira_iso(issue["created"]),
        "updated": jira_iso(issue["updated"]),
        "priority": {"self": f"{_api(request)}/priority/3", "id": "3", "name": "Medium"},
        "resolution": {"id": "10000", "name": "Done"} if done else None,
        "resolutiondate": jira_iso(issue["resolved"]) if done and issue.get("resolved") else None,
        "assignee": None,
        "reporter": USER,
        "comment": {
            "comments": comments,
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        },
        **issue["extra"],
    }
    if fields is not None:
        all_fields = _select(all_fields, fields)
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
        "versionedRepresentations",
        "id": issue["id"],
        "self": f"{_api(request)}/issue/{issue['id']}",
        "key": issue["key"],
        "fields": all_fields,
    }


def _select(all_fields: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    names = {w.strip() for w in wanted if w.strip()}
    if "*all" in names or "*navigable" in names:
        chosen = dict(all_fields)
    else:
        chosen = {k: v for k, v in all_fields.items() if k in names}
    for name in names:
        if name.startswith("-"):
            chosen.pop(name[1:], None)
    return chosen


def _find_issue(request: Request, key: str) -> dict[str, Any]:
    jira_state = _jira(request)
    issue = jira_state.issues.get(key.upper())
    if issue is None:
        issue = next((i for i in jira_state.issues.values() if i["id"] == key), None)
    if issue is None:
        raise JiraApiError(404, ["Issue does not exist or you do not have permission to see it."])
    return issue


def _fields_param(request: Request) -> list[str] | None:
    values = request.query_params.getlist("fields")
    if not values:
        return None
    return [v for value in values for v in value.split(",")]


# ---------------------------------------------------------------- endpoints


async def server_info(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    now = utc_now()
    return JSONResponse(
        {
            "baseUrl": _base(request),
            "version": "9.12.0",
            "versionNumbers": [9, 12, 0],
            "deploymentType": state.jira_deployment_type,
            "buildNumber": 912000,
            "buildDate": "2024-01-01T00:00:00.000+0000",
            "serverTime": jira_iso(now),
            "scmInfo": "sandbox",
            "serverTitle": "Healthscore Jira Sandbox",
        }
    )


async def myself(request: Request) -> Response:
    return JSONResponse({"self": f"{_api(request)}/user?username=healthscore", **USER})


async def fields(request: Request) -> Response:
    out = []
    for field_id, name, kind, clauses in SYSTEM_FIELDS:
        out.append(
            {
                "id": field_id,
                "key": field_id,
                "name": name,
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": clauses,
                "schema": {"type": kind, "system": field_id},
            }
        )
    return JSONResponse(out)


async def list_projects(request: Request) -> Response:
    """`GET /project`: issue types only with `expand=issueTypes`."""
    with_types = "issuetypes" in request.query_params.get("expand", "").lower()
    return JSONResponse(
        [_project_json(request, p, with_types) for p in _jira(request).projects.values()]
    )


def _project_or_404(request: Request, key_or_id: str) -> dict[str, Any]:
    for project in _jira(request).projects.values():
        if key_or_id.upper() == project["key"] or key_or_id == project["id"]:
            return project
    raise JiraApiError(404, [f"No project could be found with key '{key_or_id}'."])


async def get_project(request: Request) -> Response:
    """`GET /project/{projectIdOrKey}` (spec: getProject): the project with its
    `issueTypes`, which Jira always includes; 404 `No project could be found with key 'X'.`"""
    project = _project_or_404(request, request.path_params["key"])
    return JSONResponse(_project_json(request, project, with_types=True))


def _page_args(request: Request, default: int, cap: int) -> tuple[int, int]:
    start = _int(request.query_params.get("startAt"), 0, "startAt")
    limit = _int(request.query_params.get("maxResults"), default, "maxResults")
    return max(start, 0), min(max(limit, 0), cap)


async def createmeta_issue_types(request: Request) -> Response:
    """`GET /issue/createmeta/{projectIdOrKey}/issuetypes` (spec: getCreateIssueMetaIssueTypes;
    Data Center 8.4+): the issue types a project can create, so a doctor can check
    project + type. Cloud pages them under `issueTypes` and refuses `maxResults` over
    200 (spec example: `Parameter 'maxResults' must not exceed the limit '200'`);
    Data Center under `values` with `isLast`, which the jira client's `_fetch_pages` reads.
    """
    project = _project_or_404(request, request.path_params["key"])
    asked = _int(request.query_params.get("maxResults"), 50, "maxResults")
    if _cloud(request) and asked > CREATEMETA_PAGE:
        raise JiraApiError(
            400, [f"Parameter 'maxResults' must not exceed the limit '{CREATEMETA_PAGE}'"]
        )
    start, limit = _page_args(request, 50, CREATEMETA_PAGE)
    types = project_issue_types(project)
    page = [_issue_type_json(request, i) for i in types[start : start + limit]]
    body: dict[str, Any] = {"maxResults": limit, "startAt": start, "total": len(types)}
    if _cloud(request):
        return JSONResponse({**body, "issueTypes": page})
    return JSONResponse({**body, "isLast": start + limit >= len(types), "values": page})


async def my_permissions(request: Request) -> Response:
    """`GET /mypermissions` (spec: getMyPermissions): `{"permissions": {KEY: {...,
    "havePermission": bool}}}` for the keys in `permissions` (required on Cloud; Data
    Center answers them all when absent); 400 for an unknown key, 404 for an unknown
    project."""
    keys = [k.strip() for k in request.query_params.get("permissions", "").split(",") if k.strip()]
    if not keys and _cloud(request):
        raise JiraApiError(400, ["The 'permissions' query parameter is required."])
    unknown = [k for k in keys if k not in PERMISSIONS]
    if unknown:
        raise JiraApiError(400, [f"Permission key '{unknown[0]}' does not exist."])
    project_ref = request.query_params.get("projectKey") or request.query_params.get("projectId")
    project = _project_or_404(request, project_ref) if project_ref else None
    out = {}
    for key in keys or list(PERMISSIONS):
        perm_id, name, description = PERMISSIONS[key]
        have = key != "CREATE_ISSUES" or project is None or project.get("can_create", True)
        out[key] = {
            "id": perm_id,
            "key": key,
            "name": name,
            "type": "PROJECT",
            "description": description,
            "havePermission": bool(have),
        }
    return JSONResponse({"permissions": out})


def _field_meta(field_id: str, name: str, kind: str, required: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, "system": field_id}
    if kind == "array":
        schema["items"] = "string"
    return {
        "required": required,
        "schema": schema,
        "name": name,
        "fieldId": field_id,
        "key": field_id,
        "hasDefaultValue": False,
        "operations": ["set"] if kind != "array" else ["add", "set", "remove"],
    }


CREATE_FIELDS = [
    ("summary", "Summary", "string", True),
    ("issuetype", "Issue Type", "issuetype", True),
    ("project", "Project", "project", True),
    ("description", "Description", "string", False),
    ("labels", "Labels", "array", False),
]


async def createmeta_fields(request: Request) -> Response:
    """`GET /issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}` (spec:
    getCreateIssueMetaIssueTypeId): the fields a create takes, `required` marked.
    Cloud pages them under `fields`, Data Center under `values`."""
    project = _project_or_404(request, request.path_params["key"])
    type_id = request.path_params["type_id"]
    if type_id not in project_issue_types(project):
        raise JiraApiError(404, ["Issue type with id '" + type_id + "' does not exist."])
    start, limit = _page_args(request, 50, CREATEMETA_PAGE)
    fields_meta = [_field_meta(*f) for f in CREATE_FIELDS]
    page = fields_meta[start : start + limit]
    body: dict[str, Any] = {"maxResults": limit, "startAt": start, "total": len(fields_meta)}
    if _cloud(request):
        return JSONResponse({**body, "fields": page})
    return JSONResponse({**body, "isLast": start + limit >= len(fields_meta), "values": page})


async def issue_types(request: Request) -> Response:
    return JSONResponse([_issue_type_json(request, i) for i in ISSUE_TYPES])


def _resolve_issue_type(spec: Any, offered: list[str]) -> str | None:
    """The id of the issue type `{"id": ...}` or `{"name": ...}` names, among `offered`."""
    if not isinstance(spec, Mapping):
        return None
    if "id" in spec and str(spec["id"]) in offered:
        return str(spec["id"])
    name = str(spec.get("name", "")).lower()
    return next((i for i in offered if ISSUE_TYPES[i]["name"].lower() == name), None)


def _find_project(request: Request, spec: Any) -> dict[str, Any] | None:
    if not isinstance(spec, Mapping):
        return None
    wanted = str(spec.get("key") or spec.get("id") or "")
    return next(
        (
            p
            for p in _jira(request).projects.values()
            if wanted.upper() == p["key"] or wanted == p["id"]
        ),
        None,
    )


# Field errors as each deployment words them. Server/DC: "project is required" and
# "valid issue type is required" (prometheus-community/jiralert#21, pycontribs/jira#934);
# Cloud: "Specify a valid project ID or key" (wso2/product-integrator-mi#3420) and the
# spec's create-issues example "The issue type selected is invalid.".
MESSAGES = {
    "project": ("project is required", "Specify a valid project ID or key"),
    "issuetype": ("valid issue type is required", "The issue type selected is invalid."),
}


def _text_errors(given: Mapping[str, Any]) -> dict[str, str]:
    """Summary (1..255 characters), description (32,767) and labels (no spaces)."""
    errors: dict[str, str] = {}
    summary = given.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif len(summary) > SUMMARY_MAX:
        errors["summary"] = "Summary must be less than 255 characters."
    description = given.get("description")
    if isinstance(description, str) and len(description) > TEXT_FIELD_MAX:
        errors["description"] = (
            "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
        )
    labels = given.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        errors["labels"] = "Specify the value for labels in an array of strings"
    else:
        spaced = next((x for x in labels if " " in x), None)
        if spaced is not None:  # nuclei#1689, jiralert#108: a Jira server's words
            errors["labels"] = f"The label '{spaced}' contains spaces which is invalid."
    return errors


async def create_issue(request: Request) -> Response:
    """`POST /issue` (spec: createIssue): 201 `{id, key, self}`, or 400 with
    `errors` per field (`errorMessages` empty) naming every refused field at once,
    or 403 (the spec's "does not have the necessary permission") in a project seeded
    with `"can_create": false`."""
    jira_state = _jira(request)
    body = await _json(request)
    given = body.get("fields") if isinstance(body, Mapping) else None
    if not isinstance(given, Mapping):
        raise JiraApiError(400, ["Field 'fields' is required."])
    wording = 1 if _cloud(request) else 0
    errors: dict[str, str] = {}
    project = _find_project(request, given.get("project"))
    if project is None:
        errors["project"] = MESSAGES["project"][wording]
    offered = project_issue_types(project) if project else list(ISSUE_TYPES)
    issue_type = _resolve_issue_type(given.get("issuetype"), offered)
    if issue_type is None:
        errors["issuetype"] = MESSAGES["issuetype"][wording]
    errors.update(_text_errors(given))
    known = {"project", "issuetype", "summary", "description", "labels", "priority", "assignee"}
    for name in given:
        if name not in known and not name.startswith("customfield_"):
            errors[name] = (
                f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            )
    if errors or project is None or issue_type is None:
        raise JiraApiError(400, [], errors)
    if not project.get("can_create", True):
        raise JiraApiError(403, [NO_CREATE])
    key = project["key"]
    jira_state.project_counters[key] += 1
    now = utc_now()
    issue = {
        "id": str(next(jira_state.next_issue_id)),
        "key": f"{key}-{jira_state.project_counters[key]}",
        "project": key,
        "issuetype": issue_type,
        "summary": given["summary"],
        "description": given.get("description"),
        "labels": list(given.get("labels") or []),
        "status": "To Do",
        "created": now,
        "updated": now,
        "resolved": None,
        "comments": [],
        "extra": {k: v for k, v in given.items() if k.startswith("customfield_")},
    }
    jira_state.issues[issue["key"]] = issue
    return JSONResponse(
        {"id": issue["id"], "key": issue["key"], "self": f"{_api(request)}/issue/{issue['id']}"},
        status_code=201,
    )


async def get_issue(request: Request) -> Response:
    issue = _find_issue(request, request.path_params["key"])
    return JSONResponse(issue_json(request, issue, _fields_param(request)))


async def add_comment(request: Request) -> Response:
    jira_state = _jira(request)
    issue = _find_issue(request, request.path_params["key"])
    body = await _json(request)
    text = body.get("body") if isinstance(body, Mapping) else None
    if isinstance(text, Mapping):  # v3 ADF body: keep its text
        text = json.dumps(text)
    if not isinstance(text, str) or not text.strip():
        raise JiraApiError(400, [], {"comment": "Comment body can not be empty!"})
    comment = {"id": str(next(jira_state.next_comment_id)), "body": text, "created": utc_now()}
    issue["comments"].append(comment)
    issue["updated"] = comment["created"]
    return JSONResponse(_comment_json(request, issue, comment), status_code=201)


async def list_comments(request: Request) -> Response:
    """`GET /issue/{key}/comment` (spec: getComments): a page `{startAt, maxResults, total,
    comments}`. Cloud gives at most 100 a page (also the default), so the jira client's
    `comments()`, which asks one page, sees only the first 100; Data Center all (5000).
    `orderBy` other than created/+created/-created is a 400, as the spec says."""
    issue = _find_issue(request, request.path_params["key"])
    order = request.query_params.get("orderBy")
    if order is not None and order not in COMMENT_ORDERS:
        raise JiraApiError(400, [f"Invalid orderBy value '{order}'."])
    page_size = CLOUD_COMMENT_PAGE if _cloud(request) else DC_COMMENT_PAGE
    start, limit = _page_args(request, page_size, page_size)
    stored = issue["comments"][::-1] if order == "-created" else issue["comments"]
    page = [_comment_json(request, issue, c) for c in stored[start : start + limit]]
    return JSONResponse(
        {"startAt": start, "maxResults": limit, "total": len(stored), "comments": page}
    )


def _transition_json(request: Request, transition_id: str) -> dict[str, Any]:
    name = TRANSITIONS[transition_id]
    return {
        "id": transition_id,
        "name": name,
        "to": _status_json(request, name),
        "hasScreen": False,
        "isGlobal": True,
        "isInitial": False,
        "isAvailable": True,
        "isConditional": False,
    }


async def get_transitions(request: Request) -> Response:
    issue = _find_issue(request, request.path_params["key"])
    available = [t for t, name in TRANSITIONS.items() if name != issue["status"]]
    wanted = request.query_params.get("transitionId")
    if wanted:
        available = [t for t in available if t == wanted]
    return JSONResponse(
        {"expand": "transitions", "transitions": [_transition_json(request, t) for t in available]}
    )


async def do_transition(request: Request) -> Response:
    issue = _find_issue(request, request.path_params["key"])
    body = await _json(request)
    spec = body.get("transition") if isinstance(body, Mapping) else None
    transition_id = str((spec or {}).get("id", "")) if isinstance(spec, Mapping) else ""
    if transition_id not in TRANSITIONS or TRANSITIONS[transition_id] == issue["status"]:
        raise JiraApiError(
            400,
            [f"Transition id '{transition_id}' is not valid for this issue."],
        )
    issue["status"] = TRANSITIONS[transition_id]
    issue["updated"] = utc_now()
    issue["resolved"] = issue["updated"] if issue["status"] == "Done" else None
    fields_given = body.get("fields") or {}
    if isinstance(fields_given, Mapping) and "labels" in fields_given:
        issue["labels"] = list(fields_given["labels"])
    return Response(status_code=204)


# ---------------------------------------------------------------- search


def _lookup(jira_state: JiraState, issue: Mapping[str, Any]) -> jql.Lookup:
    project = jira_state.projects[issue["project"]]
    status = STATUSES[issue["status"]]
    category = STATUS_CATEGORIES[status["category"]]
    type_info = ISSUE_TYPES[issue["issuetype"]]
    text = [issue["summary"], issue["description"] or "", *(c["body"] for c in issue["comments"])]

    def lookup(name: str) -> list[str] | list[datetime] | None:
        table: dict[str, list[str] | list[datetime]] = {
            "project": [project["key"], project["name"], project["id"]],
            "labels": list(issue["labels"]),
            "status": [status["name"], status["id"]],
            "statuscategory": [category["name"], category["key"], str(category["id"])],
            "issuetype": [type_info["name"], issue["issuetype"]],
            "summary": [issue["summary"]],
            "description": [issue["description"]] if issue["description"] else [],
            "text": text,
            "key": [issue["key"], issue["id"]],
            "id": [issue["id"], issue["key"]],
            "created": [issue["created"]],
            "updated": [issue["updated"]],
            "resolution": ["Done"] if status["category"] == "done" else [],
            "priority": ["Medium"],
        }
        aliases = {"type": "issuetype", "issuekey": "key", "createddate": "created",
                   "updateddate": "updated"}  # fmt: skip
        return table.get(aliases.get(name, name), [])

    return lookup


def _run_jql(request: Request, text: str) -> list[dict[str, Any]]:
    jira_state = _jira(request)

    def check(name: str, value: str) -> None:
        if name == "project" and not any(
            value.upper() == p["key"] or value == p["id"] or value.lower() == p["name"].lower()
            for p in jira_state.projects.values()
        ):
            raise jql.JqlError(f"The value '{value}' does not exist for the field 'project'.")

    try:
        query = jql.parse(text or "", JQL_FIELDS, check)
    except jql.JqlError as exc:
        raise JiraApiError(400, [str(exc)]) from None
    issues = list(jira_state.issues.values())
    hits = [i for i in issues if query.matches(_lookup(jira_state, i))]
    order = query.order_by or [("created", True)]
    for name, descending in reversed(order):

        def key(issue: dict[str, Any], n: str = name) -> Any:
            values = _lookup(jira_state, issue)(n) or []
            if n in ("key", "issuekey", "id"):
                return int(issue["id"])
            if n in ("created", "updated", "createddate", "updateddate"):
                return issue["updated" if n.startswith("updated") else "created"]
            return str(values[0]).lower() if values else ""

        hits.sort(key=key, reverse=descending)
    return hits


async def _search_args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    if request.query_params.getlist("fields"):
        args["fields"] = _fields_param(request)
    if request.method == "POST":
        body = await _json(request)
        if isinstance(body, Mapping):
            args.update(body)
    if isinstance(args.get("fields"), str):
        args["fields"] = args["fields"].split(",")
    return args


def _int(value: Any, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise JiraApiError(400, [f"The value '{value}' is not valid for {name}."]) from None


async def search(request: Request) -> Response:
    """`/search` (Data Center; Cloud's older search): startAt, maxResults and total.

    `maxResults` is cut to the deployment's page (Cloud 100, Data Center 1000) and
    the answer says so in `maxResults`, which is how clients notice the cap.
    """
    args = await _search_args(request)
    hits = _run_jql(request, str(args.get("jql") or ""))
    start = _int(args.get("startAt"), 0, "startAt")
    cap = CLOUD_SEARCH_PAGE if _cloud(request) else DC_SEARCH_PAGE
    limit = min(_int(args.get("maxResults"), 50, "maxResults"), cap)
    fields_wanted = args.get("fields") or ["*navigable"]
    return JSONResponse(
        {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": limit,
            "total": len(hits),
            "issues": [issue_json(request, i, fields_wanted) for i in hits[start : start + limit]],
        }
    )


async def search_jql(request: Request) -> Response:
    """Cloud's enhanced search (spec: searchAndReconsileIssuesUsingJql): nextPageToken and
    isLast, no total; fields default to id. Pages hold up to 5000 issues when only
    id/key are asked, 100 otherwise."""
    args = await _search_args(request)
    hits = _run_jql(request, str(args.get("jql") or ""))
    token = args.get("nextPageToken")
    start = _int(token, 0, "nextPageToken")
    fields_wanted = args.get("fields") or ["id"]
    slim = {f.strip() for f in fields_wanted} <= {"id", "key"}
    limit = min(_int(args.get("maxResults"), 50, "maxResults"), JQL_ID_PAGE if slim else 100)
    page = hits[start : start + limit]
    body: dict[str, Any] = {
        "issues": [issue_json(request, i, fields_wanted) for i in page],
        "isLast": start + limit >= len(hits),
    }
    if not body["isLast"]:
        body["nextPageToken"] = str(start + limit)
    return JSONResponse(body)


def routes() -> list[BaseRoute]:
    api = "/rest/api/{version:int}"
    return [
        Route(api + "/serverInfo", server_info, methods=["GET"]),
        Route(api + "/myself", myself, methods=["GET"]),
        Route(api + "/mypermissions", my_permissions, methods=["GET"]),
        Route(api + "/field", fields, methods=["GET"]),
        Route(api + "/project", list_projects, methods=["GET"]),
        Route(api + "/project/{key}", get_project, methods=["GET"]),
        Route(api + "/issuetype", issue_types, methods=["GET"]),
        Route(api + "/issue", create_issue, methods=["POST"]),
        Route(api + "/issue/createmeta/{key}/issuetypes", createmeta_issue_types, methods=["GET"]),
        Route(
            api + "/issue/createmeta/{key}/issuetypes/{type_id}",
            createmeta_fields,
            methods=["GET"],
        ),
        Route(api + "/issue/{key}", get_issue, methods=["GET"]),
        Route(api + "/issue/{key}/comment", add_comment, methods=["POST"]),
        Route(api + "/issue/{key}/comment", list_comments, methods=["GET"]),
        Route(api + "/issue/{key}/transitions", get_transitions, methods=["GET"]),
        Route(api + "/issue/{key}/transitions", do_transition, methods=["POST"]),
        Route(api + "/search/jql", search_jql, methods=["GET", "POST"]),
        Route(api + "/search", search, methods=["GET", "POST"]),
    ]
