"""Playbook actions: triggers, planning, the ledger protocol, and the Slack/Jira/HubSpot senders.

The modules are imported by name (`healthscore.core.triggers`, ...); this
package imports nothing itself, so the history store can use the pure trigger
types without pulling in the vendor clients.
"""
