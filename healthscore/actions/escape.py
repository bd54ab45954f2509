"""Escaping CRM text for the place it is sent to, so a company name can never act.

CRM fields are typed by anyone (a sales rep, a web form, an import). Sent
unescaped, a company called `<!channel>` pings a whole Slack channel and
`{color:red}` restyles a Jira issue. Escaping happens on the template context
(the values), never on the template text, so a CS ops person can still write
`<!here>` in a playbook message on purpose and templates need no filters.

- Slack mrkdwn: Slack's documented escaping is exactly `&`, `<`, `>` (as
  `&amp;`, `&lt;`, `&gt;`); that makes `<!channel>`, `<@U123>` and
  `<http://x|y>` inert. Slack documents no escape for `*`, `_`, `~`, so those
  may still format (they cannot notify anyone or link anywhere).
- Jira wiki markup: a backslash before every character the renderer treats as
  markup (Atlassian's text formatting notation: "\\" escapes the next
  character), newlines folded into spaces so a value cannot start a heading,
  list or table row.
- HTML: `html.escape`, quotes included (HubSpot task bodies are HTML).
- Plain text (Jira summaries, HubSpot task subjects, Slack plain_text): no
  markup to escape; control characters and newlines are folded into spaces.

Every escaper also strips bidi controls (`healthscore.core.text.strip_bidi`):
a U+202E in a company name would otherwise reverse a Slack header or a Jira
summary as the reader sees it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Literal

from healthscore.core.text import strip_bidi

Target = Literal["slack", "jira", "html", "plain"]

JIRA_SPECIAL = frozenset("\\*_{}[]|!#+-^~?()")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def plain(text: str) -> str:
    """One line of text with control characters and newlines folded into single spaces,
    bidi controls removed."""
    return _CONTROL.sub(" ", strip_bidi(text))


def slack_mrkdwn(text: str) -> str:
    """Slack's three documented escapes; `&` first so the others are not escaped twice."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def jira_wiki(text: str) -> str:
    """Every Jira wiki markup character prefixed with a backslash."""
    return "".join("\\" + c if c in JIRA_SPECIAL else c for c in plain(text))


def html_text(text: str) -> str:
    return html.escape(plain(text), quote=True)


ESCAPERS: dict[str, Callable[[str], str]] = {
    "slack": slack_mrkdwn,
    "jira": jira_wiki,
    "html": html_text,
    "plain": plain,
}


def escaper(target: str) -> Callable[[str], str]:
    return ESCAPERS[target]
