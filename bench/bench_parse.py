"""Benchmark: how long Airflow takes to parse each DAG file, against a budget of 1 s per file.

What is measured: for each file in ``dags/``, ``DagBag(<file>)`` in a fresh interpreter that has
imported Airflow first (the DAG processor has too: it forks a parser per file from a process that
has Airflow loaded), so the time is the file's own: its imports (Nightshift's DAG helpers, Cosmos),
reading the use-case files and the dbt manifest, and building its DAGs. The figure is Airflow's own
``DagBag.dagbag_stats`` duration, the one ``airflow dags report`` prints; the best of ``--repeat``
runs (default 3) is reported, with the worst beside it. Every file must load without an import
error (exit 1 otherwise).

Run it with ``.venv/bin/python bench/bench_parse.py``. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import record

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
#: Airflow's own default for dagbag_import_timeout is 30 s; Nightshift's budget is far tighter.
TARGET_SECONDS = 1.0

_CHILD = """
import json, sys
import airflow.sdk  # noqa: F401  (loaded in the DAG processor before it forks a parser)
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
stats = [{"file": s.file, "seconds": s.duration.total_seconds(), "dags": s.dag_num, "tasks": s.task_num}
         for s in bag.dagbag_stats]
print(json.dumps({"stats": stats, "errors": {k: str(v)[:500] for k, v in bag.import_errors.items()}}))
"""


def parse_once(path: Path, env: dict[str, str]) -> dict:
    """One fresh interpreter parsing ``path``; its stats and import errors."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"parsing {path.name} crashed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="parses per file; the best is reported (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-parse-") as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
               "DO_NOT_TRACK": "1"}
        rows, failed = [], False
        for path in sorted(DAGS.glob("*.py")):
            runs = [parse_once(path, env) for _ in range(args.repeat)]
            if errors := runs[0]["errors"]:
                print(f"{path.name}: import errors: {errors}")
                failed = True
                continue
            seconds = sorted(sum(s["seconds"] for s in run["stats"]) for run in runs)
            stats = runs[0]["stats"]
            rows.append((path.name, sum(s["dags"] for s in stats), sum(s["tasks"] for s in stats), seconds[0], seconds[-1]))
    print(f"Nightshift DAG parse benchmark: DagBag per file, best of {args.repeat} fresh interpreters (Airflow imported)")
    print(f"\n{'file':<14}{'DAGs':>6}{'tasks':>7}{'parse s':>10}{'worst s':>10}")
    for name, dags, tasks, best, worst in rows:
        print(f"{name:<14}{dags:>6}{tasks:>7}{best:>10.3f}{worst:>10.3f}")
    if rows:
        slowest = max(rows, key=lambda row: row[3])
        met = slowest[3] < TARGET_SECONDS
        print(f"\nslowest: {slowest[0]} {slowest[3]:.3f} s; target: < {TARGET_SECONDS:g} s per file: "
              f"{'met' if met else 'MISSED'}")
        for name, _dags, _tasks, best, _worst in rows:
            record("bench_parse", f"DAG parse time, dags/{name}", f"{best:.2f} s", f"< {TARGET_SECONDS:g} s",
                   best < TARGET_SECONDS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
