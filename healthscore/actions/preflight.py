"""Setup checks before anything is written: `healthscore doctor`, `validate --source`, `run`.

A setup mistake otherwise shows up mid-run, after the scores were stored: a 403
on the write-back, a typo'd property that silently scores 0, a fallback channel
the bot cannot post in, a Jira project that does not exist. Each vendor's part
lives beside its client (`integrations/<vendor>/checks.py`); this module picks
what one playbook needs and collects every problem, so the caller lists them
all and exits 2.

`SetupCheck` is made once per command or flow run: each vendor's client is built
once and HubSpot's property definitions are read once per object type, so
checking several playbooks in one run costs no more calls than the objects
they read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from healthscore.actions.config import (
    JIRA_URL_ENV,
    SLACK_URL_ENV,
    ActionSettings,
    unconfigured,
)
from healthscore.actions.kinds import REGISTRY
from healthscore.core.playbook import Playbook
from healthscore.core.schema import TEMPLATE_FORMAT
from healthscore.core.templates import can_render_empty
from healthscore.errors import ConfigError, SourceError
from healthscore.integrations import ensure_reachable
from healthscore.integrations.hubspot.checks import (
    portal_properties,
    property_problems,
    scope_notes,
    scope_problems,
    token_scopes,
)
from healthscore.integrations.hubspot.client import HubSpotConnection
from healthscore.integrations.jira.checks import jira_problems
from healthscore.integrations.jira.issues import JiraSender, jira_client
from healthscore.integrations.slack.checks import slack_problems
from healthscore.integrations.slack.messages import LookupCache, SlackSender, slack_client
from healthscore.sources.cached import connect_source, is_api_source
from healthscore.sources.enrich import SecretLookup, fetch


def empty_render_warnings(playbook: Playbook) -> list[str]:
    """`file:line: actions[i].option: ...` for each message template that can render empty.

    Warnings, not errors: Slack refuses an empty text block (`invalid_blocks`), so
    the message leaves the section out and says only the account and its score
    (`slack_blocks`), which is rarely what the author meant.
    """
    warnings: list[str] = []
    for index, action in enumerate(playbook.actions):
        kind = REGISTRY.get(action.kind)
        if kind is None:
            continue
        for option, schema in kind.schema.get("properties", {}).items():
            text = action.options.get(option)
            if schema.get("format") != TEMPLATE_FORMAT or not isinstance(text, str):
                continue
            if can_render_empty(text):
                warnings.append(
                    f"{playbook.path}:{action.line}: actions[{index}].{option}: can render "
                    "empty (all of its text is inside {% if %} or {% for %}, e.g. on a first "
                    "score without previous_status); the message then carries only the "
                    "account and its score\n    hint: put a line outside the {% if %}, or add "
                    "an {% else %}"
                )
    return warnings


class SetupProblems(ConfigError):
    """Setup problems found before the run wrote anything; `problems` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        super().__init__(
            f"{count} setup problem{'s' if count != 1 else ''} found before anything was "
            "written (`healthscore doctor` lists them too):\n"
            + "\n".join(f"  - {line}" for line in problems)
        )
        self.problems = problems


def slack_sender(settings: ActionSettings, cache: LookupCache | None = None) -> SlackSender:
    """The Slack client of these settings (owner lookups kept in `cache` across runs, if
    given); ConfigError without a token, Unreachable."""
    url, token = settings.require_slack()
    ensure_reachable(url, f"check the network, or {SLACK_URL_ENV} if you set it", "reach Slack")
    return SlackSender(slack_client(url, token), cache=cache)


def jira_sender(settings: ActionSettings) -> JiraSender:
    """The Jira client of these settings; ConfigError without address or credentials."""
    url = settings.require_jira()
    ensure_reachable(url, f"check the network and {JIRA_URL_ENV}", "reach Jira")
    return JiraSender(
        jira_client(
            url,
            token=settings.jira_token,
            email=settings.jira_email,
            api_token=settings.jira_api_token,
            max_retries=settings.jira_max_retries,
        )
    )


def slack_targets(playbook: Playbook) -> tuple[bool, list[str]]:
    """(some message goes to an owner, the channels named as `to` or `fallback_channel`)."""
    owner, channels = False, []
    for action in playbook.actions:
        if action.kind != "slack":
            continue
        to = str(action.options.get("to") or "owner")
        if to == "owner":
            owner = True
        elif not (to[:1] in ("U", "W") and not to.startswith("#")):
            channels.append(to)
        fallback = action.options.get("fallback_channel")
        if fallback:
            channels.append(str(fallback))
    return owner, channels


def jira_targets(playbook: Playbook) -> dict[str, set[str]]:
    """Project key -> issue type names of the playbook's `do: jira` actions."""
    wanted: dict[str, set[str]] = {}
    for action in playbook.actions:
        if action.kind == "jira":
            project = str(action.options["project"])
            wanted.setdefault(project, set()).add(str(action.options.get("issue_type") or "Task"))
    return wanted


@dataclass
class SetupCheck:
    """The checks of one command or flow run, each vendor's answers read once.

    `strict` (doctor): a kind the playbook uses whose service is not configured
    (no Slack token, no Jira address) is a problem. Not strict (`run`): such a
    kind is skipped by the plan with a note in the summary, as before.
    """

    source: str
    settings: ActionSettings
    hubspot_token: str | None = None
    strict: bool = True
    database_url: SecretLookup = os.environ.get
    """How an `enrich:` entry's `url_env` is read (the flow also reads Prefect blocks)."""
    _connection: HubSpotConnection | None = field(default=None, init=False, repr=False)
    _scopes: frozenset[str] | None = field(default=None, init=False, repr=False)
    _definitions: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _enriched: dict[str, tuple[set[str], list[str]]] = field(
        default_factory=dict, init=False, repr=False
    )
    notes: list[str] = field(default_factory=list, init=False)
    """What the setup costs without being a problem (`scope_notes`); `doctor` prints them."""
    _slack: SlackSender | None = field(default=None, init=False, repr=False)
    _jira: JiraSender | None = field(default=None, init=False, repr=False)

    # -- HubSpot

    def connection(self) -> HubSpotConnection:
        if self._connection is None:
            self._connection = connect_source(self.source, self.hubspot_token)
        return self._connection

    def definitions(self, object_types: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Object type -> property name -> definition, each type read once."""
        missing = [t for t in object_types if t and t not in self._definitions]
        if missing:
            self._definitions.update(portal_properties(self.connection(), missing))
        return {t: self._definitions[t] for t in object_types if t in self._definitions}

    def enriched(self, playbook: Playbook) -> tuple[set[str], list[str]]:
        """The columns the playbook's `enrich:` entries bring, and why an entry cannot be
        read (each query run once, its rows not fetched; each file's header read): HubSpot
        need not have those columns, and a warehouse that does not answer is a setup
        problem too. The enrich step fetches the rows."""
        if playbook.name not in self._enriched:
            columns: set[str] = set()
            problems: list[str] = []
            for entry in playbook.enrich:
                try:
                    table = fetch(entry, playbook, secret=self.database_url, columns_only=True)
                except SourceError as exc:
                    problems.append(str(exc))
                    continue
                key = entry.key_column.casefold()
                columns.update(c for c in table.columns if c.casefold() != key)
            self._enriched[playbook.name] = (columns, problems)
        return self._enriched[playbook.name]

    def hubspot_problems(
        self, playbook: Playbook, *, scopes: bool = True, writeback: bool = True
    ) -> list[str]:
        """The token's scopes (with `scopes`) and the playbook's properties in the portal.

        `writeback=False`: without what the write-back copes with by itself
        (its scopes, a score property of the wrong type; see `scope_problems`).
        """
        if not is_api_source(self.source):
            return []
        problems: list[str] = []
        if scopes:
            try:
                if self._scopes is None:
                    self._scopes = token_scopes(self.connection())
            except PermissionError as exc:
                return [str(exc)]
            problems += scope_problems(playbook, self._scopes, writeback=writeback)
            self.notes = scope_notes(self._scopes)
        readable = [t for t in playbook.required_properties() if t]
        if playbook.writeback:
            readable = sorted({*readable, playbook.object})
        try:
            definitions = self.definitions(readable)
        except Exception as exc:  # a missing schema read scope: reported above, keep the rest
            status = getattr(exc, "status", None)
            if status not in (401, 403):
                raise
            return [*problems, f"cannot read property definitions (HubSpot answered {status})"]
        columns, unreadable = self.enriched(playbook)
        return (
            problems
            + unreadable
            + property_problems(playbook, definitions, writeback=writeback, enriched=columns)
        )

    # -- Slack and Jira

    def slack_problems(self, playbook: Playbook) -> list[str]:
        owner, channels = slack_targets(playbook)
        if not (owner or channels):
            return []
        if self._slack is None:
            self._slack = slack_sender(self.settings)
        return slack_problems(self._slack, owner=owner, channels=channels)

    def jira_problems(self, playbook: Playbook) -> list[str]:
        wanted = jira_targets(playbook)
        if not wanted:
            return []
        if self._jira is None:
            self._jira = jira_sender(self.settings)
        # the user's permissions only for doctor: a run records what Jira refuses as a
        # failed action and retries it, and its scores are no less right for it
        return jira_problems(self._jira.client, wanted, permissions=self.strict)

    def problems(
        self, playbook: Playbook, *, scopes: bool = True, writeback: bool = True
    ) -> list[str]:
        """Every setup problem of the playbook, HubSpot first, then Slack and Jira."""
        problems = self.hubspot_problems(playbook, scopes=scopes, writeback=writeback)
        missing = unconfigured(self.settings, is_api_source(self.source))
        kinds = {action.kind for action in playbook.actions}
        for vendor, check in (("slack", self.slack_problems), ("jira", self.jira_problems)):
            if vendor not in kinds:
                continue
            if vendor in missing:
                if self.strict:
                    problems.append(missing[vendor])
                continue
            problems += check(playbook)
        return problems

    def require(self, playbook: Playbook) -> list[str]:
        """Raise SetupProblems listing every problem that must stop a run.

        Returns the others: what the write-back copes with by itself (a missing
        schema scope, a score property of the wrong type), for the log; the
        run summary reports what HubSpot then refused.
        """
        blocking = self.problems(playbook, writeback=False)
        if blocking:
            raise SetupProblems(blocking)
        coped = self.hubspot_problems(playbook)  # answers cached: no second call
        return [line for line in coped if line not in blocking]
