"""Alembic migrations of the history store, shipped inside the package.

`healthscore.history.open_store` runs `upgrade head` on every open, so users
never run Alembic by hand; developers add a revision with
`alembic -c healthscore/migrations/alembic.ini revision -m "..."`.
"""
