"""One exception hierarchy for the whole package, so the CLI catches errors in one place.

    HealthscoreError            anything this package raises on purpose
    ├── UserError               input a user can fix (a file, a flag, a URL): exit 2
    │   ├── ConfigError         settings or credentials missing or wrong
    │   │   └── Unreachable     nothing answers at a vendor's address (refused, unknown host)
    │   └── SourceError         a `--source` that cannot be read
    ├── VendorError             HubSpot, Slack or Jira refused or failed a call
    └── StoreError              the history database cannot be used (exit 2: the fix is the user's)

Each error keeps the standard base it had (`ValueError`, `RuntimeError`) beside this
hierarchy, so `except ValueError` written against an older version still works.
Errors that point into a file carry `file`, `line` and `hint` (dbt's style); the CLI
prints `str(error)` with markup off, because messages quote CRM values and vendor text.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HealthscoreError",
    "SourceError",
    "StoreError",
    "Unreachable",
    "UserError",
    "VendorError",
]


class HealthscoreError(Exception):
    """Base of every error healthscore raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UserError(HealthscoreError, ValueError):
    """Bad input the user can fix: exit 2, one message, nothing written.

    `file`, `line` and `hint` are set when the problem points into a file.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, hint: str = ""
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.hint = hint


class ConfigError(UserError):
    """A setting or credential is missing or wrong (an env var, a Prefect block, a URL)."""


class Unreachable(ConfigError):
    """Nothing answers at a vendor's address: connection refused, unknown host, no answer.

    Not retried as a 5xx would be: the fix is a server to start or an address to
    set, which `hint` names. `url` is the address that was tried.
    """

    def __init__(self, message: str, *, url: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.url = url


class SourceError(UserError):
    """A source that cannot be read: bad spec, missing file, unreachable CRM."""


class VendorError(HealthscoreError, RuntimeError):
    """HubSpot, Slack or Jira refused a call or could not be reached."""


class StoreError(HealthscoreError, RuntimeError):
    """The history database cannot be opened, migrated or written: exit 2 with the fix."""

    exit_code = 2
