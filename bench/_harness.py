"""Plumbing shared by the benchmarks in ``bench/``: child stages, clocks, peak RSS, report cells, notes.

Every benchmark's parent re-runs its own script once per stage (``--stage``, ``--workdir``) in a
fresh interpreter, so that each stage's peak RSS is its own, and reads back the JSON the stage
writes into the work directory. This module holds only that plumbing; what is measured, the
baselines, the agreement checks and the targets stay in each benchmark. It must never import a
third-party library or Nightshift: a stage decides what is loaded before its clock starts.

The benchmarks are run as scripts (``.venv/bin/python bench/bench_ingest.py``), so Python puts
``bench/`` on ``sys.path`` and they import this module as ``_harness``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# [wall seconds, cpu seconds] of a block or a function's calls; a CallProfile may add a call count.
Times = list[float]


# --- parent: stages in child processes ----------------------------------------------------


def add_stage_arguments(parser: argparse.ArgumentParser, stages: Sequence[str]) -> None:
    """Add the hidden ``--stage`` and ``--workdir`` the parent passes to each child."""
    # Internal: the parent calls itself once per stage, each in a fresh process.
    parser.add_argument("--stage", choices=stages, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)


@contextmanager
def work_directory(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh temporary directory for one benchmark run, removed afterwards unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"\nwork directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_stage(
    script: str | Path,
    arguments: Sequence[str],
    name: object,
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Times:
    """Run ``script`` with ``arguments`` in a fresh interpreter; exit the parent when it fails.

    Args:
        script: the benchmark's own file (its ``__file__``).
        arguments: the child's command-line arguments.
        name: what the failure message calls the stage (shown with ``repr``).
        log: file for the child's output, whose end is printed when it fails; None lets the
            child write to the parent's terminal.
        env: the child's environment; None inherits the parent's.

    Returns:
        ``[wall seconds, cpu seconds other processes used meanwhile]`` (cpu: nan off Linux).
    """
    command = [sys.executable, str(Path(script).resolve()), *arguments]
    before = (time.perf_counter(), _busy_cpu_seconds(), _children_cpu_seconds())
    if log is None:
        done = subprocess.run(command, check=False, env=env)
    else:
        with log.open("w") as out:
            done = subprocess.run(command, check=False, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        if log is None:
            raise SystemExit(f"bench stage {name!r} failed (exit {done.returncode}); its traceback is above")
        print(log.read_text()[-6000:], file=sys.stderr)
        raise SystemExit(f"bench stage {name!r} failed (exit {done.returncode}); the end of its log is above")
    ours = _children_cpu_seconds() - before[2]
    return [time.perf_counter() - before[0], _busy_cpu_seconds() - before[1] - ours]


def home_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without any ``NIGHTSHIFT_*`` setting, plus ``extra`` and ``NIGHTSHIFT_HOME``.

    With only ``NIGHTSHIFT_HOME`` set, every other location defaults to the embedded profile under it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTSHIFT_")}
    return env | dict(extra) | {"NIGHTSHIFT_HOME": str(home)}


def _busy_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (Linux ``/proc/stat``), else nan."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (and theirs, e.g. MLflow's own subprocess)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- children: memory and clocks ----------------------------------------------------------


def max_rss_mb() -> float:
    """This process's peak resident set size so far (``ru_maxrss``), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def phase(phases: dict[str, Times], name: str) -> Iterator[None]:
    """``with phase(phases, "read"):`` records the block's [wall, cpu] seconds as ``phases["read"]``."""
    started = (time.perf_counter(), time.process_time())
    try:
        yield
    finally:
        phases[name] = [time.perf_counter() - started[0], time.process_time() - started[1]]


@contextmanager
def clock(into: Times) -> Iterator[None]:
    """``with clock(into):`` adds the block's [wall, cpu] seconds to ``into``."""
    started = (time.perf_counter(), time.process_time())
    try:
        yield
    finally:
        into[0] += time.perf_counter() - started[0]
        into[1] += time.process_time() - started[1]


def timed(function: Callable[..., Any], into: Times) -> Callable[..., Any]:
    """``function``, adding the [wall, cpu] seconds of each call to ``into``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock(into):
            return function(*args, **kwargs)

    return wrapper


def timed_calls(function: Callable[..., Any], calls: list[Times]) -> Callable[..., Any]:
    """``function``, appending the [wall, cpu] seconds of each call to ``calls``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        times = [0.0, 0.0]
        try:
            with clock(times):
                return function(*args, **kwargs)
        finally:
            calls.append(times)

    return wrapper


class CallProfile:
    """Inclusive [wall, cpu] seconds per call path (``train_challenger/train_model/lgb.train``), summed
    over calls, and with ``count_calls`` the number of calls as a third item; paths are kept in the
    order they were first entered."""

    def __init__(self, count_calls: bool = False) -> None:
        self.times: dict[str, list[float]] = {}
        self.stack: list[str] = []
        self.count_calls = count_calls

    @contextmanager
    def span(self, label: str) -> Iterator[None]:
        """Time the block under ``label``, below the spans it is nested in."""
        self.stack.append(label)
        path = "/".join(self.stack)
        self.times.setdefault(path, [0.0, 0.0, 0] if self.count_calls else [0.0, 0.0])
        started = (time.perf_counter(), time.process_time())
        try:
            yield
        finally:
            self.times[path][0] += time.perf_counter() - started[0]
            self.times[path][1] += time.process_time() - started[1]
            if self.count_calls:
                self.times[path][2] += 1
            self.stack.pop()

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        """Replace ``owner.attribute`` by a function that times each call under ``label``."""
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.span(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapper)


def profile_call(run: Callable[..., Any], *args: Any, sorts: Sequence[tuple[str, int]]) -> tuple[float, str]:
    """Run ``run(*args)`` under cProfile.

    Args:
        run: the function to profile.
        args: its arguments.
        sorts: ``(sort key, how many functions)`` for each listing, in order.

    Returns:
        The wall seconds under the profiler and the listings as ``pstats`` prints them.
    """
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(run, *args)
    total = time.perf_counter() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    for key, count in sorts:
        stats.sort_stats(key).print_stats(count)
    return total, text.getvalue()


# --- parent: the report --------------------------------------------------------------------


def add_times(*values: Times) -> Times:
    """The [wall, cpu] sums of ``values``."""
    return [sum(v[i] for v in values) for i in (0, 1)]


@dataclass(frozen=True)
class TimeTable:
    """Cells of a report table: a label column, then ``wall s (cpu)`` or ``MB`` cells, then a ratio.

    Attributes:
        label_width: width of the label column.
        cell_width: width of a time or memory cell (the wall time takes ``cell_width - 10``).
        ratio_width: width of the ratio column.
        cpu_width: width of the cpu time inside a cell.
        ratio_digits: decimals of a ratio.
        thousands: group the thousands of a memory cell.
    """

    label_width: int
    cell_width: int
    ratio_width: int = 8
    cpu_width: int = 6
    ratio_digits: int = 2
    thousands: bool = True

    def cell(self, value: Sequence[float] | None) -> str:
        """``[wall, cpu]`` as ``wall s (cpu)``; ``-`` for None."""
        if value is None:
            return f"{'-':>{self.cell_width}}"
        return f"{value[0]:>{self.cell_width - 10}.2f} s ({value[1]:{self.cpu_width}.2f})"

    def megabytes(self, value: float | None) -> str:
        """``value`` MB; ``-`` for None."""
        if value is None:
            return f"{'-':>{self.cell_width}}"
        return f"{value:>{self.cell_width - 3}{',' if self.thousands else ''}.0f} MB"

    def ratio(self, numerator: float, denominator: float) -> str:
        """``numerator / denominator`` as ``1.23x``, right-aligned in the ratio column."""
        return f"{f'{numerator / denominator:.{self.ratio_digits}f}x':>{self.ratio_width}}"

    def header(self, first: str, second: str, ratio: tuple[str, str] = ("ratio", "wall")) -> list[str]:
        """The two heading lines of a two-column comparison."""
        return [
            f"{'phase':<{self.label_width}}{first:>{self.cell_width}}{second:>{self.cell_width}}"
            f"{ratio[0]:>{self.ratio_width}}",
            f"{'':<{self.label_width}}{'wall (cpu)':>{self.cell_width}}{'wall (cpu)':>{self.cell_width}}"
            f"{ratio[1]:>{self.ratio_width}}",
        ]

    def line(self, label: str, *cells: str) -> str:
        """``label`` padded to the label column, then ``cells`` as they are."""
        return f"{label:<{self.label_width}}" + "".join(cells)

    def rss_rows(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
        """Peak RSS (with the ratio) and RSS before the run of two stage results (``peak_rss_mb``, ``start_rss_mb``)."""
        return [
            self.line("peak RSS", self.megabytes(a["peak_rss_mb"]), self.megabytes(b["peak_rss_mb"]),
                      self.ratio(a["peak_rss_mb"], b["peak_rss_mb"])),
            self.line("  before the run", self.megabytes(a["start_rss_mb"]), self.megabytes(b["start_rss_mb"])),
        ]

    def row(
        self,
        label: str,
        a: Sequence[float] | None,
        b: Sequence[float] | None = None,
        ratio_to: Sequence[float] | None = None,
    ) -> str:
        """``label``, the cells of ``a`` and ``b``, and ``a``'s wall time over ``ratio_to``'s (default ``b``'s)."""
        reference = b if ratio_to is None else ratio_to
        ratio = self.ratio(a[0], reference[0]) if a and reference and reference[0] else f"{'':>{self.ratio_width}}"
        return self.line(label, self.cell(a), self.cell(b), ratio)


def load_note(load: float) -> list[str]:
    """A note when the load average (its peak during the run) exceeded the cores, else nothing."""
    cores = os.cpu_count() or 1
    if load <= cores:
        return []
    return [
        f"note: load average reached {load:.1f} on {cores} cores during the run; other processes competed "
        "for CPU, so wall times are inflated (compare the cpu times, or re-run on a quiet machine)"
    ]


def disturbance_notes(others: dict[str, Times], timings: list[float], subject: str, effect: str) -> list[str]:
    """Notes when other processes used the CPU during a timed child, or the same work's times spread.

    Args:
        others: per child, what ``run_stage`` returned.
        timings: wall seconds of the same work (``subject``) in each run.
        subject: what ``timings`` time, e.g. ``fit``.
        effect: the text after the list of disturbed runs, leading punctuation included.
    """
    cores = os.cpu_count() or 1
    busy = {name: cpu / wall for name, (wall, cpu) in others.items() if wall and cpu == cpu}
    lines = []
    if any(share > 0.25 for share in busy.values()):
        lines.append(
            f"note: other processes kept {', '.join(f'{share:.1f}' for share in busy.values())} of {cores} cores "
            f"busy on average during the {', '.join(busy)} runs{effect}"
        )
    if max(timings) > 1.25 * min(timings):
        lines.append(
            f"note: the same {subject} took {min(timings):.2f} s to {max(timings):.2f} s across runs: the ratios "
            "carry that uncertainty"
        )
    return lines


# --- the summary table of `make bench` ---------------------------------------------------

#: The JSON-lines file every benchmark adds its results to when set (``make bench`` sets it).
SUMMARY_ENV = "NIGHTSHIFT_BENCH_SUMMARY"


def record(benchmark: str, measure: str, value: str, target: str, met: bool | None) -> None:
    """Add one line to the summary table of ``make bench`` (nothing when no summary file is set).

    Args:
        benchmark: the script, e.g. ``bench_score``.
        measure: what ``value`` is, e.g. ``end to end / booster.predict, 1M customers``.
        value: the measured ratio or figure, formatted.
        target: the target, formatted (``-`` when there is none).
        met: whether the target is met; None when there is no target.
    """
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    import json

    line = {"benchmark": benchmark, "measure": measure, "value": value, "target": target, "met": met}
    with open(path, "a") as out:
        out.write(json.dumps(line) + "\n")
