"""Benchmark: the monitor's drift report on 1M current rows against 1M reference rows x 30 features,
full Evidently against Nightshift's sampled path, for time, peak RSS and the retrain decision.

What is measured, each path in its own child process (so its peak RSS, ``ru_maxrss``, is its own):

* **full Evidently** (the baseline a user would write by hand): ``Report([DataDriftPreset(columns=
  features), ValueDrift("prediction")], include_tests=True).run(current, reference)`` on every row
  (Evidently picks Wasserstein / Jensen-Shannon above 1,000 rows, as on the sample). No HTML: the
  floor, not the product.
* **nightshift**: ``nightshift.monitoring.drift.drift_report`` with the default ``monitoring:``
  settings (a seeded sample of ``sample_rows`` = 20,000 of each side, the same Report), its rows,
  and the HTML report (``save_html``), timed apart.

The decision parity check: over ``--scenarios`` seeded scenarios (default 20), half with a covariate
shift (0.25-0.6 standard deviations on 10-20 of the 30 features, and so on the score) and half
stable, ``decision.triggers`` + ``decide`` on the full report's rows and on the sampled path's rows
must agree every time (exit 1 otherwise). Full Evidently at 1M rows takes minutes a scenario, so
the scenarios use ``--scenario-rows`` (default 100,000) rows a side; the sampled path still
samples 20,000 of them, so the check is the one that matters: sampling changes no decision.

Targets (issue 11): the sampled path <= 30 s and <= 2 GB peak at 1M x 30; the decision matches on
every scenario. Data is synthetic (25 numerical features, 5 categorical; a logistic score on five of
them), generated once in a first child and read from Parquet before each clock starts.

Run it with ``.venv/bin/python bench/bench_monitor.py`` (``--rows 200000`` for a quicker one).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from _harness import record
from _harness import TimeTable, add_stage_arguments, load_note, max_rss_mb, phase, run_stage, work_directory

NUMERICAL = [f"n{i:02d}" for i in range(25)]
CATEGORICAL = [f"c{i}" for i in range(5)]
FEATURES = [*NUMERICAL, *CATEGORICAL]
DAY = date(2026, 3, 10)
TARGET_SECONDS, TARGET_MB = 30.0, 2048.0
PATHS = ("full", "sampled")


# --- data ---------------------------------------------------------------------------------------


def _frame(rows: int, seed: int, shifted: dict[str, float] | None = None) -> Any:
    """``rows`` rows of the 30 features and a score; ``shifted`` moves numerical features by that many SDs."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    shifted = shifted or {}
    data = {name: rng.normal(shifted.get(name, 0.0), 1.0, rows).astype("float64") for name in NUMERICAL}
    levels = np.array(["a", "b", "c", "d", "e"])
    for i, name in enumerate(CATEGORICAL):
        weights = np.linspace(1.0, 1.0 + i, 5)
        data[name] = levels[rng.choice(5, rows, p=weights / weights.sum())]
    frame = pd.DataFrame(data)
    logit = frame[NUMERICAL[:5]].to_numpy() @ np.array([0.8, -0.6, 0.5, 0.4, -0.3])
    frame["score"] = 1.0 / (1.0 + np.exp(-logit))
    return frame


def _reference(rows: int, seed: int) -> Any:
    """A reference like the retrain logs: training rows (no score) and holdout rows (scored), half each."""
    import numpy as np

    frame = _frame(rows, seed)
    frame["part"] = np.where(np.arange(rows) < rows // 2, "train", "holdout")
    frame.loc[frame["part"] == "train", "score"] = np.nan
    return frame


def _scenario(index: int) -> dict[str, float]:
    """Scenario ``index``: even ones stable, odd ones shifted on 10-20 features by 0.25-0.6 SD."""
    import numpy as np

    if index % 2 == 0:
        return {}
    rng = np.random.default_rng(1000 + index)
    chosen = rng.choice(NUMERICAL, size=int(rng.integers(10, 21)), replace=False)
    return {str(name): float(rng.uniform(0.25, 0.6)) for name in chosen}


def _generate(workdir: Path, rows: int, scenario_rows: int, scenarios: int) -> None:
    _reference(rows, 1).to_parquet(workdir / "reference.parquet")
    _frame(rows, 2, _scenario(1)).to_parquet(workdir / "current.parquet")
    _reference(scenario_rows, 3).to_parquet(workdir / "scenario_reference.parquet")
    for index in range(scenarios):
        _frame(scenario_rows, 100 + index, _scenario(index)).to_parquet(workdir / f"scenario_{index}.parquet")


# --- the two paths --------------------------------------------------------------------------------


def _full_rows(current: Any, reference: Any) -> Any:
    """Full Evidently on every row; its per-column results through the same row extraction."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    from nightshift.monitoring.drift import _typed, drift_rows

    cur, ref = _typed(current, FEATURES, CATEGORICAL), _typed(reference, FEATURES, CATEGORICAL)
    definition = DataDefinition(numerical_columns=[*NUMERICAL, "prediction"], categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset(columns=FEATURES), ValueDrift(column="prediction")], include_tests=True).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition))
    return drift_rows(snapshot.dict(), cur, ref, use_case="bench", day=DAY, current_population=len(cur))


def _sampled(current: Any, reference: Any) -> Any:
    from nightshift.monitoring.config import MonitoringConfig
    from nightshift.monitoring.drift import drift_report

    return drift_report(current, reference, FEATURES, CATEGORICAL, MonitoringConfig(), use_case="bench", day=DAY)


def _decision(rows: Any) -> dict[str, Any]:
    import pandas as pd

    from nightshift.monitoring.config import MonitoringConfig
    from nightshift.monitoring.decision import Facts, decide, triggers
    from nightshift.monitoring.performance import PERFORMANCE_COLUMNS

    config = MonitoringConfig()
    decision = decide(triggers(rows, pd.DataFrame(columns=PERFORMANCE_COLUMNS), config, "binary"),
                      Facts("bench", DAY), config)
    return {"decision": decision.decision, "rules": [t.rule for t in decision.triggers],
            "drifted": sorted(rows.loc[rows["drifted"], "column_name"])}


def _run_path(workdir: Path, path: str, scenarios: int) -> None:
    import pandas as pd

    import nightshift.monitoring.drift  # noqa: F401  (imports before the clock, as a task's would be)
    import evidently.presets  # noqa: F401

    current = pd.read_parquet(workdir / "current.parquet")
    reference = pd.read_parquet(workdir / "reference.parquet")
    start = max_rss_mb()
    phases: dict[str, list[float]] = {}
    if path == "full":
        with phase(phases, "report"):
            rows = _full_rows(current, reference)
    else:
        with phase(phases, "report"):
            result = _sampled(current, reference)
        with phase(phases, "html"):
            result.save_html(workdir / "report.html")
        rows = result.rows
    peak = max_rss_mb()
    main = _decision(rows)
    del current, reference
    decisions = []
    scenario_reference = pd.read_parquet(workdir / "scenario_reference.parquet")
    scenario_times = [0.0, 0.0]
    for index in range(scenarios):
        current = pd.read_parquet(workdir / f"scenario_{index}.parquet")
        timings: dict[str, list[float]] = {}
        with phase(timings, "s"):
            rows = (_full_rows(current, scenario_reference) if path == "full"
                    else _sampled(current, scenario_reference).rows)
        scenario_times = [scenario_times[0] + timings["s"][0], scenario_times[1] + timings["s"][1]]
        decisions.append(_decision(rows))
        print(f"  {path} scenario {index}: {decisions[-1]['decision']} ({timings['s'][0]:.1f} s)", flush=True)
    (workdir / f"{path}.json").write_text(json.dumps({
        "phases": phases, "peak_rss_mb": peak, "start_rss_mb": start, "decision": main, "scenarios": decisions,
        "scenario_times": scenario_times,
    }))


# --- parent ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each side in the timed run (default 1M)")
    parser.add_argument("--scenario-rows", type=int, default=100_000,
                        help="rows of each side in the decision scenarios (default 100,000)")
    parser.add_argument("--scenarios", type=int, default=20, help="seeded scenarios, half shifted (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, HTML, results)")
    add_stage_arguments(parser, ("generate", *PATHS))
    args = parser.parse_args(argv)

    if args.stage == "generate":
        _generate(args.workdir, args.rows, args.scenario_rows, args.scenarios)
        return 0
    if args.stage in PATHS:
        _run_path(args.workdir, args.stage, args.scenarios)
        return 0

    with work_directory("nightshift-bench-monitor-", args.keep) as workdir:
        print(f"generating {args.rows:,} rows a side x {len(FEATURES)} features, and {args.scenarios} scenarios of "
              f"{args.scenario_rows:,} rows, in {workdir} ...", flush=True)
        common = ["--workdir", str(workdir), "--rows", str(args.rows), "--scenario-rows", str(args.scenario_rows),
                  "--scenarios", str(args.scenarios)]
        run_stage(__file__, ["--stage", "generate", *common], "generate")
        results, others = {}, {}
        for path in ("sampled", "full"):
            print(f"running the {path} path ...", flush=True)
            others[path] = run_stage(__file__, ["--stage", path, *common], path)
            results[path] = json.loads((workdir / f"{path}.json").read_text())
        agree, text = _report(args, results, others)
        print()
        print(text)
    return 0 if agree else 1


def _report(args: argparse.Namespace, results: dict[str, Any], others: dict[str, list[float]]) -> tuple[bool, str]:
    import os

    table = TimeTable(label_width=30, cell_width=22)
    full, sampled = results["full"], results["sampled"]
    lines = [f"drift of {args.rows:,} current rows against {args.rows:,} reference rows x {len(FEATURES)} features",
             "", *table.header("nightshift", "full Evidently", ("ratio", "full/ns"))]
    total = [sampled["phases"]["report"][i] + sampled["phases"]["html"][i] for i in (0, 1)]
    lines.append(table.line("drift report", table.cell(sampled["phases"]["report"]), table.cell(full["phases"]["report"]),
                            table.ratio(full["phases"]["report"][0], sampled["phases"]["report"][0])))
    lines.append(table.row("  + HTML (nightshift only)", sampled["phases"]["html"]))
    lines.append(table.line("total (full over nightshift)", table.cell(total), table.cell(full["phases"]["report"]),
                            table.ratio(full["phases"]["report"][0], total[0])))
    lines += table.rss_rows(sampled, full)
    lines.append("")
    lines.append(f"decision on the timed data: nightshift {sampled['decision']['decision']} "
                 f"({len(sampled['decision']['drifted'])} columns drifted), full {full['decision']['decision']} "
                 f"({len(full['decision']['drifted'])} columns drifted)")
    matches = [a["decision"] == b["decision"] for a, b in zip(sampled["scenarios"], full["scenarios"])]
    same_columns = sum(a["drifted"] == b["drifted"] for a, b in zip(sampled["scenarios"], full["scenarios"]))
    kinds = [s["decision"] for s in full["scenarios"]]
    lines.append(f"scenarios ({args.scenario_rows:,} rows a side): decision matches in {sum(matches)} of "
                 f"{len(matches)} (full: {kinds.count('requested')} requested, {kinds.count('not_needed')} not "
                 f"needed); same drifted columns in {same_columns} of {len(matches)}; scenario time nightshift "
                 f"{sampled['scenario_times'][0]:.1f} s, full {full['scenario_times'][0]:.1f} s")
    agree = all(matches) and sampled["decision"]["decision"] == full["decision"]["decision"]
    meets = total[0] <= TARGET_SECONDS and sampled["peak_rss_mb"] <= TARGET_MB
    lines.append(f"targets: <= {TARGET_SECONDS:.0f} s and <= {TARGET_MB:,.0f} MB peak: "
                 f"{'met' if meets else 'MISSED'} ({total[0]:.1f} s, {sampled['peak_rss_mb']:,.0f} MB); "
                 f"decision parity: {'met' if agree else 'MISSED'}")
    record("bench_monitor", f"drift check, {args.rows / 1e6:g}M rows a side", f"{total[0]:.1f} s, "
           f"{sampled['peak_rss_mb']:,.0f} MB", f"<= {TARGET_SECONDS:.0f} s, <= {TARGET_MB:,.0f} MB", meets)
    record("bench_monitor", "drift decision, sampled vs full Evidently", f"{sum(matches)} of {len(matches)} agree",
           "all agree", agree)
    busy = {p: cpu / wall for p, (wall, cpu) in others.items() if wall}
    if any(share > 0.25 for share in busy.values()):
        lines.append("note: other processes kept " + ", ".join(f"{v:.1f}" for v in busy.values()) +
                     f" of {os.cpu_count()} cores busy during the " + ", ".join(busy) + " runs: wall times are inflated")
    lines += load_note(os.getloadavg()[0])
    return agree, "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
