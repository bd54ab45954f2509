"""Action message templates: sandboxed Jinja with a fixed set of variables.

The set is fixed so `healthscore validate` can reject a misspelt variable before
a message is ever sent, instead of a CSM receiving "{{ acount.name }}".
"""

from __future__ import annotations

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_VARIABLES: dict[str, str] = {
    "account": "the account: id, name and every CRM property (account.renewal_date)",
    "score": "the score, rounded to 2 decimals",
    "status": "the status label",
    "color": "the status color",
    "status_chip": "the status as an emoji chip (🟩 🟨 🟥)",
    "previous_score": "the score compared with (none when new)",
    "previous_status": "the status of the previous run (none when new)",
    "delta": "score minus previous_score (none when new)",
    "trend": "up, down, flat or new",
    "trend_arrow": "↗️ ↘️ ↔️ or 🆕",
    "groups": "points per group name",
    "owner": "the owner: name, email, id",
    "playbook": "the playbook name",
    "action": "the action name",
    "url": "link to the record in HubSpot",
}

ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateProblem(ValueError):
    """A template that does not parse or uses a variable that does not exist."""


def check_template(source: str) -> None:
    """Raise TemplateProblem if `source` does not parse or names an unknown variable."""
    try:
        parsed = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template does not parse: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(parsed) - TEMPLATE_VARIABLES.keys())
    if unknown:
        raise TemplateProblem(f"unknown template variable {unknown[0]!r}")


def render(source: str, context: dict[str, object]) -> str:
    return ENVIRONMENT.from_string(source).render(context)


def account_properties(source: str) -> set[str]:
    """CRM properties a template reads from `account` (`account.x`, `account["x"]`).

    A source pulls only the properties a playbook needs, so a property used only
    in a message must be named here or it renders empty. `id` is the record id,
    not a property. A template that does not parse reads nothing (validation
    reports it).
    """
    try:
        parsed = ENVIRONMENT.parse(source)
    except TemplateSyntaxError:
        return set()
    found: set[str] = set()
    for node in parsed.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "account"):
            continue
        if isinstance(node, nodes.Getattr):
            found.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add(node.arg.value)
    return found - {"id"}


def can_render_empty(source: str) -> bool:
    """True when no text of the template is sure to be output (blank text counts as none).

    Static, from Jinja's syntax tree: literal text and `{{ ... }}` outside any
    block are sure; an `{% if %}` is sure only when every branch, `else`
    included, is; a `{% for %}` never is (the list may be empty). So a message
    wholly inside `{% if previous_status %}` can render empty on a first score.
    A template that does not parse is validation's to report: False.
    """
    try:
        parsed = ENVIRONMENT.parse(source)
    except TemplateSyntaxError:
        return False
    return not _sure(parsed.body)


def _sure(body: list[nodes.Node]) -> bool:
    for node in body:
        if isinstance(node, nodes.Output):
            for part in node.nodes:
                if not isinstance(part, nodes.TemplateData) or part.data.strip():
                    return True
        elif isinstance(node, nodes.If):
            branches = [node.body, *(elif_.body for elif_ in node.elif_), node.else_]
            if all(_sure(branch) for branch in branches):
                return True
        elif isinstance(node, nodes.With | nodes.Scope | nodes.ScopedEvalContextModifier) and _sure(
            node.body
        ):
            return True
    return False
