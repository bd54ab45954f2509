"""The dashboard end to end: `healthscore demo` writes it, headless Chromium reads it.

The demo runs as a user runs it (the console script, in a subprocess, with no Prefect
server configured), so these tests also prove the README's first command works. The
browser tests need Debian's `chromium` and `chromium-driver`: skipped without them on
a workstation, failed in CI (where .ci/run installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.history import open_store
from healthscore.reports.dashboard import render_dashboard
from healthscore.reports.portfolio import load_portfolio
from tests.conftest import REPO
from tests.portfolio_history import CHANNEL, HOSTILE, make_history

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEMO_ACCOUNTS, DEMO_WEEKS = 120, 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`healthscore demo --accounts 120 --weeks 3` into a temporary folder, as a user runs it."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    script = Path(sys.executable).with_name("healthscore")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from healthscore.cli import app; app()"]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_HOME", "PREFECT_API_URL")}
    size = ["--accounts", str(DEMO_ACCOUNTS), "--weeks", str(DEMO_WEEKS)]
    done = subprocess.run(
        [*command, "demo", *size, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {"out": out, "stdout": done.stdout, "stderr": done.stderr}


def test_demo_ends_with_the_report_and_a_dashboard(demo: dict[str, Any]) -> None:
    out: Path = demo["out"]
    stdout: str = demo["stdout"]
    dashboard, db = (out / "dashboard.html").resolve(), (out / "history.db").resolve()
    assert dashboard.is_file() and dashboard.stat().st_size > 1_000_000  # Plotly is inside
    assert f"dashboard:      {dashboard}" in stdout
    assert f"history:        {db}" in stdout
    assert (out / "crm.json").is_file()  # `healthscore explain` works after the demo
    assert re.search(rf"{DEMO_ACCOUNTS} companies, \d+ customers scored", stdout)
    assert "1 weekly digest to #cs-leadership" in stdout
    # the playbook's actions really ran against the sandboxes
    alerts = re.search(r"Slack: +(\d+) alerts \((\d+) to the CSM", stdout)
    assert alerts is not None and int(alerts.group(1)) > 0 and int(alerts.group(2)) > 0
    assert re.search(r"Jira: +\d+ tickets opened", stdout)
    members = re.search(r"Upsell candidates: (\d+) members", stdout)
    assert members is not None and int(members.group(1)) > 0
    assert stdout.rstrip().splitlines()[-1].strip().startswith("PREFECT_HOME=")  # last: next steps
    assert "Next:" in stdout
    assert "Traceback" not in demo["stderr"]
    with open_store(f"sqlite:///{db}") as store:
        runs = store.runs()
    assert len(runs) == DEMO_WEEKS
    assert all(r.outcome == "succeeded" for r in runs)
    assert [r.as_of.weekday() for r in runs] == [0] * DEMO_WEEKS  # simulated Mondays


def test_dashboard_command_writes_an_offline_file(demo: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "exec.html"
    db = f"sqlite:///{demo['out'] / 'history.db'}"
    result = CliRunner().invoke(app, ["dashboard", "--db", db, "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target.resolve()}" in result.output
    page = target.read_text(encoding="utf-8")
    assert external_resources(page) == []  # nothing loaded from the network
    assert len(re.findall(r"plotly\.js \(basic - minified\) v\d", page)) == 1  # inlined, once


def test_dashboard_command_without_a_database_says_so(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["dashboard", "--db", db, "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2
    assert "no history database" in result.output
    assert not (tmp_path / "none.db").exists()


class _Resources(HTMLParser):
    """Tags that would load something: script src, link href, img/iframe src."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and tag in ("script", "link", "img", "iframe"):
                self.found.append(f"{tag} {name}={value}")


def external_resources(page: str) -> list[str]:
    parser = _Resources()
    parser.feed(page)  # script bodies are CDATA here: Plotly's own strings do not count
    return parser.found


@pytest.fixture
def hostile_page(tmp_path: Path) -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    make_history(url, tmp_path)
    with open_store(url) as store:
        page = render_dashboard(load_portfolio(store))
    path = tmp_path / "hostile.html"
    path.write_text(page, encoding="utf-8")
    return path, page


def test_dashboard_escapes_crm_text(hostile_page: tuple[Path, str]) -> None:
    _, page = hostile_page
    assert HOSTILE not in page
    assert "<!channel>" not in page
    assert "<b>Bo</b>" not in page
    assert "&lt;b&gt;Bo&lt;/b&gt; Lee" in page  # the CSM table: escaped text
    block = re.search(r'<script type="application/json" id="hs-data">(.*?)</script>', page, re.S)
    assert block is not None
    raw = block.group(1)
    assert "</" not in raw and "<" not in raw
    data = json.loads(raw)
    names = {a["name"] for a in data["accounts"]}
    assert HOSTILE in names and CHANNEL in names  # the exact text survives the round trip
    assert "<!--hs-data-->" not in page  # a name holding the data slot's mark stays text
    # Plotly's own JSON (movers) escapes `<` too
    assert "\\u003cscript\\u003e" in page or "&lt;script&gt;" in page


def test_markdown_artifact_escapes_crm_text(tmp_path: Path) -> None:
    from healthscore.reports.artifacts import md, portfolio_markdown

    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    make_history(url, tmp_path)
    with open_store(url) as store:
        text = portfolio_markdown(load_portfolio(store))
    assert HOSTILE not in text and "<b>" not in text
    assert md(HOSTILE) in text  # among the movers
    assert "&lt;b&gt;Bo&lt;/b&gt; Lee" in text  # among the CSMs
    assert md("Delta | Pipes *bold*") == "Delta \\| Pipes \\*bold\\*"


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = "needs Debian chromium and chromium-driver (apt-get install -y ...)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="healthscore-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1400",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def visible_rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#hs-accounts tbody tr.account")


@pytest.mark.browser
def test_dashboard_in_chromium(demo: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get((demo["out"] / "dashboard.html").resolve().as_uri())
    with open_store(f"sqlite:///{demo['out'] / 'history.db'}") as store:
        portfolio = load_portfolio(store)

    # status section: the donut and the timeline drew their SVG
    for figure in ("hs-fig-statuses", "hs-fig-timeline", "hs-fig-owners", "hs-fig-movers"):
        assert driver.find_elements(By.CSS_SELECTOR, f"#{figure} svg.main-svg"), figure
    statuses = driver.find_element(By.ID, "statuses").text
    for status in portfolio.status_counts():
        assert status.label in statuses
    headline = driver.find_element(By.ID, "headline").text
    assert str(len(portfolio.accounts)) in headline

    # CSM section: one table row per CSM, each with its account count
    owner_rows = driver.find_elements(By.CSS_SELECTOR, "#hs-owner-table tbody tr")
    owners = portfolio.owners()
    assert len(owner_rows) == len(owners) >= 2
    first = owner_rows[0].find_elements(By.TAG_NAME, "td")
    assert first[0].text == owners[0].name and first[1].text == str(owners[0].accounts)

    # account section: every account, then a filter that narrows to the matching ones
    rows = visible_rows(driver)
    assert len(rows) == len(portfolio.accounts)
    owner = owners[0].name
    box = driver.find_element(By.ID, "hs-filter")
    box.send_keys(owner)
    filtered = visible_rows(driver)
    assert 0 < len(filtered) < len(rows)
    assert len(filtered) == owners[0].accounts
    assert all(r.find_elements(By.TAG_NAME, "td")[1].text == owner for r in filtered)
    assert (
        f"{len(filtered)} of {len(portfolio.accounts)} accounts"
        in driver.find_element(By.ID, "hs-count").text
    )

    # sorting by score, both ways
    header = driver.find_element(By.CSS_SELECTOR, "#hs-accounts th[data-sort='score']")
    header.click()
    scores = [float(r.find_elements(By.TAG_NAME, "td")[2].text) for r in visible_rows(driver)]
    assert scores == sorted(scores, reverse=True)

    # drill-down: every rule of every group, with its points
    filtered = visible_rows(driver)
    filtered[0].click()
    details = driver.find_element(By.CSS_SELECTOR, "#hs-accounts tr.details").text
    for rule in ("Seat utilisation", "CSM pulse", "Completed meetings (90 days, decaying)"):
        assert rule in details
    assert len(driver.find_elements(By.CSS_SELECTOR, "#hs-accounts svg.spark polyline")) == len(
        filtered
    )

    assert severe(driver) == []
    driver.execute_script("window.scrollTo(0, 0)")
    for target in (tmp_path / "dashboard.png", REPO / "out" / "dashboard.png"):
        target.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(target))
        assert target.stat().st_size > 10_000


@pytest.mark.browser
def test_hostile_names_render_as_text(hostile_page: tuple[Path, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    path, _ = hostile_page
    driver = browser
    driver.get(path.as_uri())  # an executed <script> would leave an alert open: get() fails
    names = [r.find_elements(By.TAG_NAME, "td")[0].text for r in visible_rows(driver)]
    assert HOSTILE in names and CHANNEL in names
    assert driver.execute_script("return document.querySelectorAll('tbody script').length") == 0
    assert "<b>Bo</b> Lee" in driver.find_element(By.ID, "hs-owner-table").text
    assert severe(driver) == []


@pytest.mark.usefixtures("prefect_harness")
def test_each_run_publishes_the_dashboard_and_its_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Prefect UI tells the dashboard's story: markdown, account table, link to the file."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.score_accounts import score_accounts
    from healthscore.demo.sample import generate_snapshot
    from tests.conftest import PLAYBOOKS

    monkeypatch.delenv("HEALTHSCORE_DASHBOARD_DIR", raising=False)
    crm = tmp_path / "crm.json"
    crm.write_text(json.dumps(generate_snapshot(40, seed=3)), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'store' / 'history.db'}"
    summary = score_accounts(
        playbook_path=str(PLAYBOOKS / "default.yaml"),
        source=f"file:{crm}",
        as_of="2026-11-01T09:00:00Z",
        db_url=db,
    )
    page = tmp_path / "store" / "dashboard-customer-health.html"  # next to the SQLite file
    assert page.is_file()

    keys = [f"health-customer-health-{k}" for k in ("dashboard", "accounts", "dashboard-file")]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
    latest = {a.key: a for a in sorted(found, key=lambda a: a.created or 0)}
    assert set(latest) == set(keys)
    markdown = str(latest[keys[0]].data)
    assert f"{summary['accounts']} accounts as of 2026-11-01" in markdown
    for section in ("## By status", "## By CSM", "## Biggest movers"):
        assert section in markdown
    assert page.resolve().as_uri() in markdown
    table = latest[keys[1]].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == summary["accounts"]
    assert {"account", "csm", "score", "status", "trend"} <= set(rows[0])
    assert page.resolve().as_uri() in str(latest[keys[2]].data)
