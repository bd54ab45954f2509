"""The playbooks that ship inside the package, found from any folder.

A normal (non-editable) install puts this folder in site-packages, so the demo's
default playbook, the examples, the telco table and the `healthscore init`
templates are read from here, never from a checkout (issue 14). A checkout keeps
the documented `playbooks/` at the top level as a symlink to this folder.

Layout (package data, see `[tool.setuptools.package-data]` in pyproject.toml):

    default.yaml                        the demo's playbook (the sample CRM's properties)
    examples/hubspot_sum.yaml           HubSpot-style `combine: sum`, uncapped
    examples/telco.yaml                 IBM's telco churn table, for `healthscore calibrate`
    examples/telco-customer-churn.csv   that table: 7,043 rows, `Churn` = Yes/No
    templates/*.yaml                    starter playbooks for `healthscore init`

The format of every file here is docs/playbook.md in the repository.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent
DEFAULT_PLAYBOOK = BUNDLED / "default.yaml"
TELCO_PLAYBOOK = BUNDLED / "examples" / "telco.yaml"
TELCO_CSV = BUNDLED / "examples" / "telco-customer-churn.csv"
# The published JSON Schema (`healthscore schema`); tests keep it equal to the generated one.
SCHEMA_FILE = BUNDLED.parent / "data" / "playbook.schema.json"

# `healthscore init --template NAME`: name -> (bundled file, the line `init --help` shows).
TEMPLATES: dict[str, tuple[Path, str]] = {
    "starter": (
        BUNDLED / "templates" / "starter.yaml",
        "five capped groups (usage, support, sentiment, advocacy, engagement) on standard "
        "HubSpot properties, 0-100",
    ),
    "hubspot": (
        BUNDLED / "templates" / "hubspot.yaml",
        "HubSpot's pre-defined groups (1:1 engagement, 1:1 call engagement, support "
        "tickets, CSM sentiment, NPS), maximums adding up to 100",
    ),
    "demo": (
        DEFAULT_PLAYBOOK,
        "the demo's playbook: scores `healthscore sample` CRMs and `--source sandbox`",
    ),
}
DEFAULT_TEMPLATE = "starter"


def bundled_names() -> list[str]:
    """Every bundled playbook as `find_bundled` accepts it: `default`, `examples/telco`, ..."""
    return sorted(
        p.relative_to(BUNDLED).with_suffix("").as_posix() for p in BUNDLED.rglob("*.yaml")
    )


def find_bundled(value: str | Path) -> Path:
    """The file a user means by VALUE: a path if one exists, else a bundled file.

    `default`, `examples/telco` or `templates/hubspot` (with or without `.yaml`, also
    prefixed `playbooks/` as the README writes them) name the bundled playbooks, and
    `playbooks/examples/telco-customer-churn.csv` the telco table, so
    `healthscore validate default`, `-p playbooks/default.yaml` and
    `--source csv:playbooks/examples/telco-customer-churn.csv` work from any folder.
    A file of that name in the current folder always wins. Anything else comes back
    unchanged, so the loader reports the missing file as the user wrote it.
    """
    path = Path(value)
    if path.exists():
        return path
    name = path.as_posix().removeprefix("playbooks/")
    for candidate in (BUNDLED / name, BUNDLED / f"{name}.yaml"):
        if candidate.is_file() and candidate.resolve().is_relative_to(BUNDLED):
            return candidate
    return path
