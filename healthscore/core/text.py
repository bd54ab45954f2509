"""Text people typed, made fit for where it goes: names folded to ASCII and slugs; CRM
text made safe where it enters.

Playbook, group and action names become HubSpot property names, Jira labels,
file names and demo e-mail addresses; each must be plain ASCII. Folding is
Unicode NFKD (é -> e, ü -> u) plus the letters NFKD does not decompose (ł, ø,
æ, ß, ı); apostrophes vanish ("O'Brien" -> "OBrien"); anything else non-ASCII
is dropped.

CRM text is made safe once, where it enters: every source builds its records' columns
with `frame.FrameBuilder` (which applies `clean` column by column) and its `Owner`s.

CRM fields are typed by anyone, and a few values broke whole runs: a NUL byte
(PostgreSQL text cannot hold U+0000: "A string literal cannot contain NUL"),
a lone UTF-16 surrogate (not encodable as UTF-8: both databases, every JSON
encoder) and bidi override characters, which make a Slack header or a Jira
summary read backwards (the "Trojan Source" trick, CVE-2021-42574). Lengths are
capped where text leaves for a vendor, to each vendor's documented limit.

- `clean`: NUL and other C0 controls except tab/newline/CR removed, lone
  surrogates replaced by U+FFFD. Applied to every property value and owner field.
- `strip_bidi`: the Unicode bidi embedding, override and isolate controls
  (U+202A..U+202E, U+2066..U+2069) and marks (U+200E, U+200F, U+061C) removed;
  for text bound for Slack, Jira and HTML (`healthscore.actions.escape`).
- `cap`: at most `limit` characters, the last one an ellipsis when cut.
"""

from __future__ import annotations

import re
import unicodedata

_TRANSLIT = str.maketrans(
    {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ı": "i", "'": ""}
)


def ascii_fold(text: str) -> str:
    """`text` in ASCII letters, case kept: "Łukasz Müller" -> "Lukasz Muller"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def slug(text: str, sep: str = "_") -> str:
    """Lower-case ASCII letters and digits, runs of anything else as one `sep`, none at
    either end: "Süpport & care" -> "support_care"; "" when nothing is left."""
    return re.sub(r"[^a-z0-9]+", sep, ascii_fold(text).lower()).strip(sep)


SLACK_TEXT_LIMIT = 40_000
"""Slack `chat.postMessage` `text`: "truncated after 40,000 characters" (Slack API docs)."""
JIRA_SUMMARY_LIMIT = 255
"""Jira issue summary: 255 characters (Jira's field limit)."""
JIRA_TEXT_LIMIT = 32_767
"""Jira description and comment: 32,767 characters (Atlassian: "text field limit")."""
HUBSPOT_TASK_SUBJECT_LIMIT = 255
"""HubSpot task `hs_task_subject`: kept to one line of 255 characters, like a Jira summary."""
HUBSPOT_TASK_BODY_LIMIT = 65_536
"""HubSpot task `hs_task_body`: 65,536 characters (HubSpot property value limit)."""

CONTROLS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
"""The C0 controls `clean` removes, as a regular expression (Python's `re` and polars')."""
_DIRTY = re.compile(CONTROLS[:-1] + "\ud800-\udfff]")
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
ELLIPSIS = "…"


def clean(text: str) -> str:
    """`text` without NUL/C0 controls (tab, newline, CR kept), lone surrogates as U+FFFD."""
    if not _DIRTY.search(text):
        return text
    return _DIRTY.sub(lambda m: "" if m.group() < "\ud800" else "\ufffd", text)


def clean_optional(text: str | None) -> str | None:
    return None if text is None else clean(text)


def strip_bidi(text: str) -> str:
    """`text` without bidi embedding/override/isolate controls and direction marks."""
    return _BIDI.sub("", text)


def cap(text: str, limit: int) -> str:
    """At most `limit` characters; a cut text ends with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def plural(count: int, noun: str) -> str:
    """`1 group`, `3 groups`, `0 actions`: a count and its noun, English plural by `s`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
