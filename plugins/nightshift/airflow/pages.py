"""HTML pages of the Nightshift views: one template per DAG family, rendered from ``run_facts``' data.

Templates only lay out what they are given (Jinja2, autoescaped): no SQL, no reads, no Airflow.
"""

from __future__ import annotations

from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2rem;color:#1a202c;background:#fff}
h1{font-size:1.3rem;margin:0 0 .4rem} h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.3rem 0;font-size:.85rem} td,th{border:1px solid #cbd5e0;padding:.2rem .5rem;text-align:left}
th{background:#edf2f7} .pass{color:#276749;font-weight:600} .fail{color:#c53030;font-weight:600}
.muted{color:#718096} .num{text-align:right;font-variant-numeric:tabular-nums} a{color:#2b6cb0}
.bar{background:#63b3ed;height:.7rem;display:inline-block}
"""

_BASE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ title }}</title><style>{{ style }}</style></head>
<body><h1>{{ title }}</h1>{% if subtitle %}<p class="muted">{{ subtitle }}</p>{% endif %}{{ body }}</body></html>"""

_TABLE = """{% if rows %}<table><tr>{% for c in rows[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for c in r %}<td>{{ r[c] }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="muted">{{ empty }}</p>{% endif %}"""

_INGEST = """{% for f in sources %}
<h2>Source <code>{{ f.source }}</code>, batch {{ f.day }}</h2>
{% if not f.validated %}<p class="fail">No validation recorded for {{ f.source }} on {{ f.day }}: the batch was rejected
or never landed. The failure's reason is the first error line of the <code>validate_and_load</code> log.</p>{% else %}
<table><tr><th>landed</th><th>accepted</th><th>quarantined</th><th>suite version</th></tr>
<tr><td class="num" id="landed">{{ f.landed_rows }}</td><td class="num" id="accepted">{{ f.accepted_rows }}</td>
<td class="num" id="quarantined">{{ f.quarantined_rows }}</td><td>{{ f.suite_version }}</td></tr></table>
<h2>Quarantine reasons</h2>
{% if f.reasons %}<table><tr><th>failed expectation</th><th>rows</th></tr>
{% for reason, n in f.reasons %}<tr><td>{{ reason }}</td><td class="num">{{ n }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">Nothing quarantined.</p>{% endif %}
<h2>Sample quarantined rows (first {{ f.sample|length }})</h2>{{ table(f.sample, "No quarantined rows.") }}
{% endif %}
<p class="muted">Tables: {{ f.tables.raw }}, {{ f.tables.quarantine }} (partition batch_date = {{ f.day }}), {{ f.tables.summary }}.</p>
{% endfor %}"""

_RETRAIN = """{% if not f.recorded %}<p class="fail">This run registered nothing (yet): it failed or is still running
before its <code>register</code> step. See the failed task's log; its first error line says why.</p>{% else %}
<table><tr><th>verdict</th><th>action</th><th>champion before</th><th>champion after</th><th>trigger</th><th>run date</th></tr>
<tr><td class="{{ 'pass' if f.verdict == 'passed' else 'fail' }}" id="verdict">{{ f.verdict }}</td>
<td>{{ f.decision.action }}</td><td id="champion-before">{{ f.champion_before }}</td>
<td id="champion-after">{{ f.champion_after }}</td><td>{{ f.decision.trigger }}
{% if f.decision.trigger_reasons %}({{ f.decision.trigger_reasons }}){% endif %}</td><td>{{ f.run_date }}</td></tr></table>
<p>MLflow run: <a href="{{ f.mlflow_run_url }}" target="_blank" id="mlflow-link">{{ f.mlflow_run_id }}</a></p>
<h2>Gate report</h2>
<table id="gate"><tr><th>check</th><th>value</th><th>threshold</th><th>verdict</th><th>detail</th></tr>
{% for c in f.checks %}<tr><td>{{ c.name }}</td><td class="num">{{ '–' if c.value is none else '%.4f'|format(c.value) }}</td>
<td>{{ c.threshold }}</td><td class="{{ 'pass' if c.passed else 'fail' }}">{{ 'pass' if c.passed else 'FAIL' }}</td>
<td>{{ c.detail }}</td></tr>{% endfor %}</table>
{% if f.reasons %}<p>Reasons: {{ f.reasons|join('; ') }}</p>{% endif %}
{% endif %}"""

_MONITOR = """{% for f in nights %}<h2>Night {{ f.day }}</h2>
{% if not f.monitored %}<p class="muted">Nothing monitored for {{ f.day }} (yet).</p>{% else %}
{% if f.decision %}<p>Decision: <b id="decision">{{ f.decision.decision }}</b>
{% if f.decision.suppressed_by %} (suppressed by {{ f.decision.suppressed_by }}){% endif %}
{% if f.decision.reasons %}: {{ f.decision.reasons }}{% endif %}</p>{% endif %}
<p><a href="{{ base }}/reports/monitor/{{ f.use_case }}/{{ f.day }}" target="_blank" id="report-link">Evidently drift report
(HTML)</a> <span class="muted">{{ f.report }}</span></p>
<h2>Drift ({{ f.drifted }} drifted)</h2>{{ table(f.drift, "No drift rows.") }}
<h2>Performance</h2>{{ table(f.performance, "No performance rows.") }}
{% endif %}{% endfor %}"""

_SCORE = """{% for f in nights %}<h2>Scores of {{ f.day }}</h2>
{% if not f.rows %}<p class="muted">No scores published for {{ f.day }} (yet).</p>{% else %}
<table><tr><th>rows scored</th><th>errors</th><th>model version</th><th>feature service</th><th>mean score</th><th>scored at</th></tr>
<tr><td class="num" id="rows-scored">{{ f.rows }}</td><td class="num">{{ f.error_rows }}</td><td id="model-version">{{ f.model_version }}</td>
<td>{{ f.feature_service }}</td><td class="num">{{ '%.4f'|format(f.mean_score) }}</td><td>{{ f.scored_at }}</td></tr></table>
<h2>Errors by reason</h2>{% if f.errors %}<table><tr><th>reason</th><th>rows</th></tr>{% for reason, n in f.errors %}
<tr><td>{{ reason }}</td><td class="num">{{ n }}</td></tr>{% endfor %}</table>{% else %}<p class="muted">No errors.</p>{% endif %}
<h2>Score distribution</h2><table><tr><th>score</th><th>rows</th><th></th></tr>{% set most = f.histogram|map(attribute='rows')|max %}
{% for b in f.histogram %}<tr><td>{{ '%.3f'|format(b['from']) }} – {{ '%.3f'|format(b['to']) }}</td><td class="num">{{ b.rows }}</td>
<td><span class="bar" style="width:{{ (200 * b.rows / (most or 1))|round|int }}px"></span></td></tr>{% endfor %}</table>
<h2>Top of the table</h2>{{ table(f.top, "No rows.") }}
<p class="muted">Tables: {{ f.tables.predictions }} (partition scoring_date = {{ f.day }}), {{ f.tables.errors }}; analysts
query {{ f.tables.latest }}.</p>{% endif %}{% endfor %}"""

_HOME = """<h2>Links</h2><ul>
<li><a href="{{ mlflow }}" target="_blank" id="mlflow">MLflow</a> <span class="muted">(runs, gate reports, versions and aliases; <code>make mlflow</code>)</span></li>
<li><a href="{{ dbt_docs }}" target="_blank" id="dbt-docs">dbt docs</a> <span class="muted">(models, columns, tests, lineage; <code>make dbt-docs</code>)</span></li>
</ul><h2>Prediction tables</h2><table><tr><th>use case</th><th>latest night</th><th>tables</th></tr>
{% for u in use_cases %}<tr><td><a href="{{ base }}/predictions/{{ u.name }}" id="predictions-{{ u.name }}">{{ u.name }}</a></td>
<td>{{ u.latest or 'not scored yet' }}</td><td><code>{{ u.predictions }}</code>, <code>marts.{{ u.name }}_predictions_latest</code></td></tr>{% endfor %}
</table><p class="muted">Each DAG run's own data is under its "Nightshift" tab (Dag run page).</p>"""

_OTHER = """<p class="muted">{{ message }}</p>"""


def render(kind: str, title: str, subtitle: str = "", **data: Any) -> str:
    """The page of ``kind`` (ingest, retrain, monitor, score, home, other) with ``data``."""
    from jinja2 import Environment

    env = Environment(autoescape=True)
    table = env.from_string(_TABLE)
    env.globals["table"] = lambda rows, empty: _markup(table.render(rows=rows, empty=empty))
    body = env.from_string({"ingest": _INGEST, "retrain": _RETRAIN, "monitor": _MONITOR, "score": _SCORE,
                            "home": _HOME, "other": _OTHER}[kind]).render(**data)
    return env.from_string(_BASE).render(title=title, subtitle=subtitle, style=_markup(_STYLE), body=_markup(body))


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # noqa: S704 - rendered by our own autoescaped templates
