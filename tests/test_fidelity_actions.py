"""Jira and HubSpot actions against the vendors' refusals and paging, with the real clients."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.lists import ListCreateRequest
from jira import JIRA

from healthscore.integrations.hubspot.actions import HubSpotActionError, HubSpotActions
from healthscore.integrations.hubspot.client import connect
from healthscore.integrations.jira.issues import JiraSender
from healthscore.sandbox import running_sandbox
from tests.sandbox.test_jira_fidelity import SEED, _post

LABELS = {"account_label": "healthscore-acct-101", "rule_label": "healthscore-rule-x"}


def payload(occurrence: str) -> dict[str, Any]:
    return {
        **LABELS,
        "occurrence_label": occurrence,
        "project": "CS",
        "summary": "Acme is At-risk",
        "description": "score 41",
        "comment": "still At-risk",
    }


def test_an_issue_with_150_comments_gets_no_duplicate_on_jira_cloud() -> None:
    with running_sandbox(SEED, jira_deployment_type="Cloud") as urls:
        sender = JiraSender(JIRA(server=urls.jira_url, basic_auth=("bot@example.com", "t")))
        key, created = sender.send(payload("healthscore-occ-1"))
        assert created == {"issue": key, "created": True}
        for i in range(149):
            _post(urls, f"issue/{key}/comment", {"body": f"chatter {i}"})
        key2, commented = sender.send(payload("healthscore-occ-2"))  # the 150th comment
        assert key2 == key and "comment" in commented and "reconciled" not in commented
        again_key, again = sender.send(payload("healthscore-occ-2"))  # a retry, lost answer
        assert again_key == key
        assert again == {"issue": key, "comment": commented["comment"], "reconciled": True}
        bodies = [c.body for c in sender.all_comments(key)]
        assert len(bodies) == 150
        assert sum("healthscore-occ-2" in b for b in bodies) == 1


def test_a_list_name_held_by_another_object_type_is_a_clear_error() -> None:
    with running_sandbox() as urls:
        client = HubSpot(access_token="t", host=urls.hubspot_url)
        client.crm.lists.lists_api.create(
            list_create_request=ListCreateRequest(
                name="Upsell candidates", object_type_id="0-1", processing_type="MANUAL"
            )
        )
        actions = HubSpotActions(connect(sandbox=True, base_url=urls.hubspot_url))
        with pytest.raises(HubSpotActionError) as caught:
            actions.list_id("Upsell candidates", "0-2", create=True)
        message = str(caught.value)
        assert message.startswith(
            "A list named 'Upsell candidates' already exists (a contact list, id "
        )
        assert message.endswith(
            "List names are unique across all object types. Rename the list in the playbook's "
            "action, or rename or delete the other list in HubSpot."
        )
