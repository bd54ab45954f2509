"""The `healthscore` command line (typer).

Every command that reads user input turns a bad file, a bad date or an
unreachable source into one clear message on stderr and exit code 2, never a
traceback; nothing is written when the input was bad. `_util` owns the `app`;
each command module registers its commands on it when imported here.
"""

# Registration order is the order of `healthscore --help`.
# isort: off
from healthscore.cli._util import app
from healthscore.cli.init import init
from healthscore.cli.score import explain, sample, schema, score, validate
from healthscore.cli.runs import history, run
from healthscore.cli.actions import actions
from healthscore.cli.calibrate import calibrate
from healthscore.cli.dashboard import dashboard, demo
from healthscore.cli.sandbox import sandbox
from healthscore.cli.doctor import doctor
# isort: on

__all__ = [
    "actions",
    "app",
    "calibrate",
    "dashboard",
    "demo",
    "doctor",
    "explain",
    "history",
    "init",
    "run",
    "sample",
    "sandbox",
    "schema",
    "score",
    "validate",
]
