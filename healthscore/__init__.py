"""healthscore: customer health scores for HubSpot, scored by a playbook YAML."""

__version__ = "0.1.0"
