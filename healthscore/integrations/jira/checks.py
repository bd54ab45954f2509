"""`healthscore doctor`'s Jira checks: the credentials, each project, its issue types, and
whether the user may create issues and comment there.

Per project: `GET /rest/api/2/project/{key}` (Jira REST "Get project": the project
with its `issueTypes`, 404 `No project could be found with key 'X'.` when it does
not exist or the user cannot browse it; 401 for bad credentials), then, for doctor,
`GET /rest/api/2/mypermissions?projectKey=X&permissions=CREATE_ISSUES,ADD_COMMENTS`
(Jira REST "Get my permissions"; Cloud requires the keys): a user who may browse a
project but not create issues in it otherwise passes the check and gets a 403 on
the first issue of a run.
"""

from __future__ import annotations

from collections.abc import Mapping

from jira import JIRA
from jira.exceptions import JIRAError


def jira_problems(
    client: JIRA, wanted: Mapping[str, set[str]], *, permissions: bool = True
) -> list[str]:
    """Every missing project and issue type; `wanted`: project key -> issue type names;
    with `permissions`, every project where the user may not create issues or comment.

    Issue type names compare case-insensitively, as Jira's create-issue does.
    Raises JIRAError for an answer other than 401/403/404 (a 5xx: not a setup fault).
    """
    problems: list[str] = []
    for key in sorted(wanted):
        try:
            project = client.project(key)
        except JIRAError as exc:
            if exc.status_code == 401:
                return ["the Jira credentials are not valid (Jira answered 401)"]
            if exc.status_code not in (403, 404):
                raise
            problems.append(
                f"Jira project {key} does not exist or the Jira user cannot see it "
                f"(Jira answered {exc.status_code})"
            )
            continue
        if permissions:
            problems += permission_problems(client, key)
        offered = {str(t.name).casefold(): str(t.name) for t in project.issueTypes}
        for name in sorted(wanted[key]):
            if name.casefold() not in offered:
                problems.append(
                    f"Jira project {key} has no issue type {name} "
                    f"(it has: {', '.join(sorted(offered.values()))})"
                )
    return problems


NEEDED_PERMISSIONS = {"CREATE_ISSUES": "create issues", "ADD_COMMENTS": "comment on its issues"}
"""The project permissions a Jira action uses: it opens issues, and comments on the open one."""


def permission_problems(client: JIRA, key: str) -> list[str]:
    """One line per permission of `NEEDED_PERMISSIONS` the user lacks in project `key`."""
    granted = client.my_permissions(projectKey=key, permissions=",".join(NEEDED_PERMISSIONS))
    have = granted.get("permissions") or {}
    return [
        f"the Jira user may not {what} in project {key} (Jira permission {permission}): "
        "grant it in the project's permission scheme"
        for permission, what in NEEDED_PERMISSIONS.items()
        if not (have.get(permission) or {}).get("havePermission")
    ]
