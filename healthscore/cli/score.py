"""`healthscore validate`, `schema`, `score`, `explain` and `sample`.

Playbooks and files only: these commands store nothing and send nothing.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from healthscore.actions import load_playbook, playbook_schema
from healthscore.cli._util import (
    PLAYBOOK_HELP,
    AsOfOption,
    Column,
    OutputFormat,
    PlaybookOption,
    SourceOption,
    _progress_printer,
    app,
    as_of_or_fail,
    err,
    fail,
    out,
    print_rows,
    user_errors,
)
from healthscore.core.crm import Owner
from healthscore.core.enrich import Enriched
from healthscore.core.playbook import Playbook, PlaybookError
from healthscore.core.scoring import AccountScore, Scorer, round2
from healthscore.core.symbols import chip
from healthscore.core.text import plural
from healthscore.files import atomic_write
from healthscore.playbooks import find_bundled
from healthscore.reports.run_summary import EnrichmentSummary
from healthscore.sources import load_snapshot
from healthscore.sources.enrich import enrich


@app.command()
def validate(
    playbooks: Annotated[
        list[Path],
        typer.Argument(
            help=PLAYBOOK_HELP.replace("file", "files", 1),
            metavar="PLAYBOOK",
            show_default=False,
            callback=lambda paths: [find_bundled(p) for p in paths],
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Also check the properties each playbook reads in this portal "
            "(hubspot or sandbox): they exist on the right object, with a type that "
            "fits their operators.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check playbooks: every problem with file:line, field path and a hint (exit 2 if any).

    Several files are also checked against each other: two playbooks whose
    write-back would use the same HubSpot properties are an error. Warnings (a
    message that can render empty) do not change the exit code.
    """
    from healthscore.actions.preflight import empty_render_warnings
    from healthscore.integrations.hubspot.writeback import name_clashes

    problems = 0
    loaded: list[Playbook] = []
    for path in playbooks:
        try:
            playbook = load_playbook(path)
        except PlaybookError as exc:
            problems += len(exc.issues)
            for issue in exc.issues:
                err.print(str(issue), markup=False)
            continue
        loaded.append(playbook)
        for warning in empty_render_warnings(playbook):
            err.print(f"warning: {warning}", markup=False)
        rules = sum(len(g.rules) for g in playbook.groups)
        out.print(
            f"{path}: valid — {playbook.name!r}, {plural(len(playbook.groups), 'group')}, "
            f"{plural(rules, 'rule')}, {plural(len(playbook.actions), 'action')}, "
            f"combine: {playbook.combine}",
            markup=False,
        )
    for clash in name_clashes(loaded):
        problems += 1
        err.print(clash, markup=False)
    if source is not None and loaded:
        problems += _portal_problems(loaded, source)
    if problems:
        err.print(f"{problems} problem{'s' if problems != 1 else ''} found.", markup=False)
        raise typer.Exit(2)


def _portal_problems(playbooks: list[Playbook], source: str) -> int:
    """Print the property problems of each playbook in the portal; how many there were."""
    from healthscore.actions.config import action_settings
    from healthscore.actions.preflight import SetupCheck
    from healthscore.cli._util import run_errors
    from healthscore.sources.cached import is_api_source

    if not is_api_source(source):
        fail(
            f"--source {source}: validate checks properties in a HubSpot portal (hubspot or "
            "sandbox)"
        )
    check = SetupCheck(source, action_settings(source))
    count = 0
    with user_errors(), run_errors():
        for playbook in playbooks:
            for line in check.hubspot_problems(playbook, scopes=False):
                err.print(f"{playbook.path}: {line}", markup=False)
                count += 1
    return count


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the playbook JSON Schema (for editors: `# yaml-language-server: $schema=...`)."""
    text = json.dumps(playbook_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            atomic_write(output, text)
        except OSError as exc:
            fail(f"{output}: cannot write ({exc.strerror})")
        out.print(f"wrote {output}", markup=False)


# ---------------------------------------------------------------- score / explain


def load_inputs(playbook_path: Path, source: str) -> tuple[Playbook, Enriched]:
    """The playbook and the source's snapshot with the playbook's `enrich:` joined on."""
    with user_errors():
        playbook = load_playbook(playbook_path)
        snapshot = load_snapshot(source, playbook, progress=_progress_printer())
        enriched = enrich(snapshot, playbook)
    return playbook, enriched


@app.command()
def score(
    playbook: PlaybookOption,
    source: SourceOption,
    as_of: AsOfOption = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table, json or csv.")
    ] = OutputFormat.table,
) -> None:
    """Score every in-segment account and print it; stores nothing, sends nothing."""
    moment = as_of_or_fail(as_of)
    book, enriched = load_inputs(playbook, source)
    snapshot = enriched.snapshot
    scores = Scorer(book).score_snapshot(snapshot, moment)
    for counts in enriched.counts:  # stderr: JSON and CSV on stdout stay machine-readable
        line = EnrichmentSummary.of(counts, (s.id for s in scores)).describe()
        err.print(line, markup=False)
    if output_format is OutputFormat.json:
        sys.stdout.write(
            json.dumps([s.to_json() for s in scores], indent=2, ensure_ascii=False) + "\n"
        )
    elif output_format is OutputFormat.csv:
        sys.stdout.write(scores_csv(book, scores, snapshot.owner_by_id()))
    else:
        print_score_table(book, scores, snapshot.owner_by_id())


def scores_csv(book: Playbook, scores: list[AccountScore], owners: Mapping[str, Owner]) -> str:
    """One row per account: id, name, owner id, score, status, each group's points, owner name.

    The owner's name comes last so the columns before it keep their places for
    scripts written against earlier versions.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    groups = [g.name for g in book.groups]
    writer.writerow(["id", "name", "owner_id", "score", "status", *groups, "owner"])
    for s in scores:
        points = s.group_points()
        owner = owners.get(s.owner_id or "")
        writer.writerow(
            [
                s.id,
                s.name,
                s.owner_id or "",
                round2(s.score),
                s.status,
                *(points[g] for g in groups),
                owner.display_name if owner else "",
            ]
        )
    return buffer.getvalue()


def print_score_table(
    book: Playbook, scores: list[AccountScore], owners: Mapping[str, Owner]
) -> None:
    columns = [Column("id"), Column("account"), Column("owner"), Column("score", right=True)]
    columns += [Column("status"), *(Column(g.name, right=True) for g in book.groups)]
    rows = []
    for s in sorted(scores, key=lambda s: s.score):
        owner = owners.get(s.owner_id or "")
        rows.append(
            [
                s.id,
                s.name,
                owner.display_name if owner else (s.owner_id or "—"),
                f"{round2(s.score):g}",
                f"{chip(s.color)} {s.status}",
                *(f"{p:g}" for p in s.group_points().values()),
            ]
        )
    print_rows(f"{book.name} — {len(scores)} accounts", columns, rows)
    counts: dict[str, int] = {}
    for s in scores:
        counts[s.status] = counts.get(s.status, 0) + 1
    summary = ", ".join(
        f"{chip(t.color)} {t.label}: {counts.get(t.label, 0)}" for t in book.thresholds
    )
    out.print(summary, markup=False)


@app.command()
def explain(
    account_id: Annotated[str, typer.Argument(help="The account's CRM id.", show_default=False)],
    playbook: PlaybookOption,
    source: SourceOption,
    as_of: AsOfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show how one account is scored: every rule, what it saw, and its points."""
    moment = as_of_or_fail(as_of)
    book, enriched = load_inputs(playbook, source)
    snapshot = enriched.snapshot
    record = snapshot.record(book.object, account_id)
    if record is None:
        fail(f"no {book.object} record with id {account_id!r} in {source}")
    in_segment, result = Scorer(book).explain(record, snapshot, moment)
    if as_json:
        payload = {**result.to_json(), "in_segment": in_segment, "as_of": moment.isoformat()}
        payload["enriched"] = {
            name: {"value": record.properties.get(name), "from": origin}
            for name, origin in enriched.origins.items()
        }
        payload["breakdown"] = [
            {
                "group": g.name,
                "points": round2(g.points),
                "raw": round2(g.raw),
                "rules": [
                    {"name": r.name, "kind": r.kind, "points": round2(r.points), "inputs": r.inputs}
                    for r in g.rules
                ],
            }
            for g in result.groups
        ]
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    print_explanation(book, result, in_segment, moment, enriched.origins)


def print_explanation(
    book: Playbook,
    result: AccountScore,
    in_segment: bool,
    moment: datetime,
    origins: Mapping[str, str] | None = None,
) -> None:
    """`explain`'s text; `origins`: property -> where an `enrich:` entry got it from."""
    origins = origins or {}
    out.print(
        f"{result.name} (id {result.id}) — playbook {book.name!r}, as of {moment.isoformat()}",
        markup=False,
    )
    if not in_segment:
        segment = " or ".join(
            "(" + " and ".join(c.describe() for c in option) + ")"
            for option in book.segment_options()
        )
        out.print(f"⚠ not in the segment ({segment}): `score` leaves it out.", markup=False)
    for name, origin in origins.items():
        value = result.properties.get(name)
        shown = f"= {value!r}" if value is not None else "unknown (no row)"
        out.print(f"{name} {shown} from {origin}", markup=False)
    for name, _ in book.derived:
        out.print(f"derived {name} = {result.properties.get(name)}", markup=False)
    for definition, group in zip(book.groups, result.groups, strict=True):
        title = Text(f"{group.name}: {round2(group.points):g} points")
        table = Table(title=title, title_justify="left")
        longest = max(len(r.name) for r in group.rules)
        table.add_column("rule", min_width=min(longest, 48))  # names stay whole; inputs wrap
        table.add_column("saw", overflow="fold")
        table.add_column("points", justify="right")
        if definition.start:
            table.add_row("start", "", f"{definition.start:g}")
        for rule in group.rules:
            table.add_row(  # CRM values and names from the playbook: text, never markup
                Text(rule.name),
                Text(_describe_inputs(rule.inputs, origins)),
                f"{round2(rule.points):g}",
            )
        if group.points != group.raw:
            bound = "max_points" if group.points < group.raw else "min_points"
            table.add_row(
                f"clamped by {bound}", f"raw {round2(group.raw):g}", f"{round2(group.points):g}"
            )
        out.print(table)
    out.print(
        f"score {round2(result.score):g} → {chip(result.color)} {result.status}", markup=False
    )


def _describe_inputs(inputs: Mapping[str, Any], origins: Mapping[str, str]) -> str:
    parts: list[str] = []
    for key, value in inputs.items():
        if key == "occurrences":
            parts.extend(
                f"  {o['id']}: {o['age_days']:g} days old"
                + "".join(  # the value an event value map scored
                    f", {k}={v!r}" for k, v in o.items() if k not in ("id", "age_days", "points")
                )
                + (f" → {round2(o['points']):g}" if "points" in o else "")
                for o in value[:10]
            )
            if len(value) > 10:
                parts.append(f"  … {len(value) - 10} more")
        elif key == "values":
            parts.extend(
                f"  {v['id']}: " + ", ".join(f"{k}={v[k]!r}" for k in v if k != "id")
                for v in value[:10]
            )
        else:
            text = f"{key} = {value!r}" if value is not None else f"{key} unknown"
            parts.append(f"{text} ({origins[key]})" if key in origins else text)
    return "\n".join(parts)


# ---------------------------------------------------------------- sample data


@app.command()
def sample(
    output: Annotated[
        Path, typer.Option("--out", "-o", help="Snapshot JSON to write.", show_default=False)
    ],
    accounts: Annotated[
        int, typer.Option("--accounts", "-n", min=1, help="Number of companies.")
    ] = 500,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = 7,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The moment the sample's dates lead up to (ISO 8601, UTC); default now.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate a realistic CRM snapshot (companies, CSMs, contacts with NPS, events)."""
    from healthscore.demo.sample import generate_snapshot

    moment = as_of_or_fail(as_of) if as_of else None
    snapshot = generate_snapshot(accounts, seed=seed, as_of=moment)
    atomic_write(output, json.dumps(snapshot, ensure_ascii=False))
    counts = ", ".join(f"{len(v)} {k}" for k, v in snapshot.items())
    out.print(f"wrote {output}: {counts}", markup=False)
