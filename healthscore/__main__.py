"""`python -m healthscore`: the same CLI as the `healthscore` command."""

from healthscore.cli import app

app(prog_name="healthscore")
