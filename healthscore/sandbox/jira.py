"""Jira REST API v2 (and the v3 JQL search) for the `jira` client, at Jira's paths.

Covers what `JIRA(server=...)` calls on start (serverInfo), project and issue
type lookups that `create_issue` makes, issues, comments, transitions through
a To Do -> In Progress -> Done workflow, and JQL search both the Server way
(`/search`, startAt/total) and the Cloud way (`/search/jql`, nextPageToken).
Errors come back as Jira's `{"errorMessages": [...], "errors": {...}}`.
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


def _project_json(request: Request, project: Mapping[str, Any], expand: str = "") -> dict[str, Any]:
    body = {
        "self": f"{_api(request)}/project/{project['id']}",
        "id": project["id"],
        "key": project["key"],
        "name": project["name"],
        "projectTypeKey": "software",
    }
    if "issueTypes" in expand or "issuetypes" in expand.lower():
        body["issueTypes"] = [_issue_type_json(request, i) for i in ISSUE_TYPES]
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
    expand = request.query_params.get("expand", "")
    return JSONResponse(
        [_project_json(request, p, expand) for p in _jira(request).projects.values()]
    )


def _project_or_404(request: Request, key_or_id: str) -> dict[str, Any]:
    for project in _jira(request).projects.values():
        if key_or_id.upper() == project["key"] or key_or_id == project["id"]:
            return project
    raise JiraApiError(404, [f"No project could be found with key '{key_or_id}'."])


async def get_project(request: Request) -> Response:
    project = _project_or_404(request, request.path_params["key"])
    return JSONResponse(_project_json(request, project, request.query_params.get("expand", "")))


async def issue_types(request: Request) -> Response:
    return JSONResponse([_issue_type_json(request, i) for i in ISSUE_TYPES])


def _resolve_issue_type(spec: Any) -> str | None:
    if not isinstance(spec, Mapping):
        return None
    if "id" in spec and str(spec["id"]) in ISSUE_TYPES:
        return str(spec["id"])
    name = str(spec.get("name", "")).lower()
    return next((i for i, t in ISSUE_TYPES.items() if t["name"].lower() == name), None)


async def create_issue(request: Request) -> Response:
    jira_state = _jira(request)
    body = await _json(request)
    given = body.get("fields") if isinstance(body, Mapping) else None
    if not isinstance(given, Mapping):
        raise JiraApiError(400, ["Field 'fields' is required."])
    errors: dict[str, str] = {}
    project_spec = given.get("project")
    project = None
    if isinstance(project_spec, Mapping):
        wanted = str(project_spec.get("key") or project_spec.get("id") or "")
        project = next(
            (
                p
                for p in jira_state.projects.values()
                if wanted.upper() == p["key"] or wanted == p["id"]
            ),
            None,
        )
    if project is None:
        errors["project"] = "project is required"
    issue_type = _resolve_issue_type(given.get("issuetype"))
    if issue_type is None:
        errors["issuetype"] = "valid issue type is required"
    summary = given.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255:
        errors["summary"] = "Summary must be less than 255 characters."
    labels = given.get("labels") or []
    if not isinstance(labels, list) or any(not isinstance(x, str) or " " in x for x in labels):
        errors["labels"] = "The label must not contain spaces."
    known = {"project", "issuetype", "summary", "description", "labels", "priority", "assignee"}
    for name in given:
        if name not in known and not name.startswith("customfield_"):
            errors[name] = (
                f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            )
    if errors or project is None or issue_type is None:
        raise JiraApiError(400, [], errors)
    key = project["key"]
    jira_state.project_counters[key] += 1
    now = utc_now()
    issue = {
        "id": str(next(jira_state.next_issue_id)),
        "key": f"{key}-{jira_state.project_counters[key]}",
        "project": key,
        "issuetype": issue_type,
        "summary": summary,
        "description": given.get("description"),
        "labels": list(labels),
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
    issue = _find_issue(request, request.path_params["key"])
    comments = [_comment_json(request, issue, c) for c in issue["comments"]]
    start = int(request.query_params.get("startAt", 0))
    limit = int(request.query_params.get("maxResults", 5000))
    page = comments[start : start + limit]
    return JSONResponse(
        {"startAt": start, "maxResults": limit, "total": len(comments), "comments": page}
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
    """Server/Data Center search: startAt, maxResults and total."""
    args = await _search_args(request)
    hits = _run_jql(request, str(args.get("jql") or ""))
    start = _int(args.get("startAt"), 0, "startAt")
    limit = min(_int(args.get("maxResults"), 50, "maxResults"), 1000)
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
    """Cloud's enhanced search: nextPageToken and isLast, no total; fields default to id."""
    args = await _search_args(request)
    hits = _run_jql(request, str(args.get("jql") or ""))
    token = args.get("nextPageToken")
    start = _int(token, 0, "nextPageToken")
    limit = min(_int(args.get("maxResults"), 50, "maxResults"), 5000)
    fields_wanted = args.get("fields") or ["id"]
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
        Route(api + "/field", fields, methods=["GET"]),
        Route(api + "/project", list_projects, methods=["GET"]),
        Route(api + "/project/{key}", get_project, methods=["GET"]),
        Route(api + "/issuetype", issue_types, methods=["GET"]),
        Route(api + "/issue", create_issue, methods=["POST"]),
        Route(api + "/issue/{key}", get_issue, methods=["GET"]),
        Route(api + "/issue/{key}/comment", add_comment, methods=["POST"]),
        Route(api + "/issue/{key}/comment", list_comments, methods=["GET"]),
        Route(api + "/issue/{key}/transitions", get_transitions, methods=["GET"]),
        Route(api + "/issue/{key}/transitions", do_transition, methods=["POST"]),
        Route(api + "/search/jql", search_jql, methods=["GET", "POST"]),
        Route(api + "/search", search, methods=["GET", "POST"]),
    ]
