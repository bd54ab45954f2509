"""The HTML pages people open offline: the executive dashboard and the calibration report.

Both are Jinja2 templates (`healthscore/data/templates/`) rendered with autoescape, so
every CRM or playbook string (account, CSM, status, rule names) reaches the page as
escaped text unless a template says otherwise, and JSON goes into
`<script type="application/json">` through `|tojson` (`<`, `>`, `&` and `'` written as
`\\u003c`-style escapes, so a name cannot close the script block). Charts are plain
plotly.js figure dicts (`{"data": [...], "layout": {...}}`) built in Python and drawn
by `charts.js` with the vendored *basic* plotly.js bundle (bar, pie and scatter traces;
1.2 MB against 4.8 MB for the full one), inlined in the page: no CDN, no network.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

PLOTLY_BUNDLE = "plotly-basic.min.js"
"""npm `plotly.js-basic-dist-min` 4.1.1, MIT (header kept; `plotly-basic.LICENSE`)."""
CHART_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
"""plotly.js config of every chart: no Plotly logo or toolbar in an executive page."""


@cache
def environment() -> Environment:
    """The one Jinja2 environment of the pages: autoescape on, unknown variables an error.

    `tojson` keeps dict order (a playbook's groups stay in their order) and writes
    compact UTF-8 (`_dumps`); Jinja then escapes `<`, `>`, `&` and `'`. `asset(name)`
    inlines a file of `healthscore/data/` as is: only package files, never CRM text,
    go through it.
    """
    env = Environment(
        loader=PackageLoader("healthscore", "data/templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.policies["json.dumps_function"] = _dumps
    env.policies["json.dumps_kwargs"] = {}
    env.globals["asset"] = asset
    return env


def _dumps(value: Any) -> str:
    """Compact UTF-8 JSON in dict order, by orjson: about 4x the standard library's
    speed on the dashboard's 20 MB of account data at 50k accounts (NaN becomes null)."""
    return orjson.dumps(value).decode("utf-8")


def render_page(template: str, **context: Any) -> str:
    """`template` of `healthscore/data/templates/` with `context`, as one HTML string.

    Every page extends `page.html`, which needs `title`, `stylesheet` (a data file
    name) and `figures` ({div id: plotly.js figure dict}).
    """
    return (
        environment()
        .get_template(template)
        .render(chart_config=CHART_CONFIG, plotly_bundle=PLOTLY_BUNDLE, **context)
    )


@cache
def asset(name: str) -> Markup:
    """A file of `healthscore/data/`, trusted as is (the page's CSS and JavaScript)."""
    return Markup((resources.files("healthscore") / "data" / name).read_text(encoding="utf-8"))


def chart_text(text: object) -> str:
    """CRM text for a plotly.js label, shown as typed.

    plotly.js renders a few tags in labels (`<b>`, `<br>`, `<a href>`) and decodes HTML
    entities (its `svg_text_utils`), so a CSM called `<b>Bo</b>` would turn bold:
    HTML-escaping the text makes plotly.js show the characters themselves.
    """
    return str(escape(text))
