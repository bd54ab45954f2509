"""Local HubSpot, Slack and Jira servers that the real, unpatched clients talk to.

One process, one port, each API at its vendor's own paths. See docs/snapshot.md
("Sandboxes") for why they exist and what they enforce.
"""

from .app import SandboxApp, create_app
from .hubspot_scopes import load_tokens, required_scopes
from .limits import Fault, Limits
from .server import SandboxUrls, running_sandbox, serve
from .state import SandboxState

__all__ = [
    "Fault",
    "Limits",
    "SandboxApp",
    "SandboxState",
    "SandboxUrls",
    "create_app",
    "load_tokens",
    "required_scopes",
    "running_sandbox",
    "serve",
]
