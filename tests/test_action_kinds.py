"""Action kinds as a registry: the core validates any kind from its schema fragment alone.

A kind is one module under healthscore/actions/kinds/; the core playbook
validator knows none of them and takes their JSON Schema fragments as data.
"""

from __future__ import annotations

import pytest

from healthscore.actions import playbook_schema
from healthscore.actions.kinds import KIND_SCHEMAS, REGISTRY
from healthscore.actions.kinds.base import template
from healthscore.core.playbook import PlaybookError, parse_playbook

BOOK = """\
name: x
groups:
  - name: g
    rules: [{when: [{property: a, op: known}], points: 1}]
actions:
  - name: hook
    on: {status_changed_to: At-risk}
    do: webhook
{extra}"""

WEBHOOK = {
    "webhook": {
        "properties": {
            "url": {"type": "string"},
            "body": template("Jinja template of the JSON body."),
            "retries": {"type": "integer", "minimum": 0, "default": 2},
        },
        "required": ["url"],
    }
}


def _issues(extra: str) -> list[tuple[int, str, str]]:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(BOOK.replace("{extra}", extra), "x.yaml", WEBHOOK)
    return [(i.line, i.path, i.message) for i in caught.value.issues]


def test_the_registry_is_the_published_list_of_kinds() -> None:
    assert list(REGISTRY) == ["hubspot_list", "hubspot_task", "jira", "slack"]  # module order
    action = playbook_schema()["$defs"]["action"]
    assert action["properties"]["do"]["enum"] == list(REGISTRY)
    for name, kind in REGISTRY.items():
        assert kind.name == name and KIND_SCHEMAS[name] is kind.schema
        assert set(kind.schema["properties"]) <= set(action["properties"])


def test_a_new_kind_is_validated_from_its_fragment_with_lines() -> None:
    extra = "    body: '{{ acount.name }}'\n    retries: -1\n    list: Upsell\n"
    assert _issues(extra) == [
        (6, "actions[0]", "a webhook action needs `url`"),
        (9, "actions[0].body", "unknown template variable 'acount'"),
        (10, "actions[0].retries", "must be at least 0, got -1"),
        (11, "actions[0].list", "unknown field `list`"),
    ]


def test_a_new_kind_gets_its_defaults_and_keeps_its_options() -> None:
    book = parse_playbook(BOOK.replace("{extra}", "    url: https://x\n"), "x.yaml", WEBHOOK)
    (action,) = book.actions
    assert (action.name, action.kind, action.line) == ("hook", "webhook", 6)
    assert action.options == {"url": "https://x", "retries": 2}


def test_without_kinds_the_core_leaves_options_unchecked() -> None:
    book = parse_playbook(BOOK.replace("{extra}", "    anything: [1, 2]\n"), "x.yaml")
    assert book.actions[0].options == {"anything": [1, 2]}
