"""The Airflow UI in a real browser: what a new user sees after a small demo, logged in.

Debian's chromium, driven by Playwright for Python (``executable_path=/usr/bin/chromium``; Playwright
never downloads a browser), against ``airflow standalone`` on a free port (scheduler,
LocalExecutor, API server with the Nightshift plugin). Every process is stopped by PID after.

The state: a churn world of 400 customers over 120 days (the library ingests it and builds the
features), then through Airflow the first champion (``retrain_churn``), the last night's scores
(``score_churn``) and its monitoring (``monitor_churn``). Then, by the scheduler: a backfill of
``ingest_activity`` for the day after, whose file is corrupt, fails; the fixed file lands and the
task is cleared; its second try succeeds. The browser then checks:

- the DAG list;
- the failed-then-retried ingest run: try 1 failed with the reason in its log, try 2 succeeded;
- the Nightshift tab of that ingest run, and of the retrain, monitor and score runs, with real numbers;
- the Nightshift entry of the navigation bar, and the latest scores;
- a backfill launched from the UI's dialog, completed by the scheduler.

Screenshots go to ``test-artifacts/browser/`` (``NIGHTSHIFT_TEST_ARTIFACTS`` to move it). The tests run in file order.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from nightshift.demo.churn_data import DatagenSpec, batch_file_name, generate
from nightshift.landing import Landing
from nightshift.settings import PROJECT_ROOT
from tests.conftest import (SQLITE_LOCKED, AirflowHarness, airflow_cli, airflow_standalone, backfill_runs,
                            create_backfill, wait_until)
from tests.unit.test_features import World, build_world

pytestmark = pytest.mark.e2e
START = date(2026, 1, 1)
SPEC = DatagenSpec(customers=400, start=START, days=120, seed=11)
LAST = START + timedelta(days=SPEC.days - 1)  # 2026-04-30: champion, scores and monitoring
BROKEN = LAST + timedelta(days=1)  # 2026-05-01: activity lands corrupt, then fixed
UI_BACKFILL = [LAST - timedelta(days=1), LAST]  # ingest_customers, launched from the dialog
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("NIGHTSHIFT_TEST_ARTIFACTS", PROJECT_ROOT / "test-artifacts")) / "browser"


def _runs(db: Path, dag_id: str) -> list[tuple[str, str, str, str]]:
    """(run id, run type, state, logical day) of ``dag_id``'s runs, oldest first."""
    with sqlite3.connect(db, timeout=30) as con:
        return con.execute("select run_id, run_type, state, substr(coalesce(logical_date, ''), 1, 10) from dag_run "
                           "where dag_id = ? order by id", (dag_id,)).fetchall()


def _tries(db: Path, dag_id: str, run_id: str, task_id: str) -> list[tuple[int, str]]:
    """(try number, state) of every try of a task instance: earlier tries from the history table."""
    with sqlite3.connect(db, timeout=30) as con:
        earlier = con.execute("select try_number, state from task_instance_history where dag_id = ? and run_id = ? "
                              "and task_id = ? order by try_number", (dag_id, run_id, task_id)).fetchall()
        current = con.execute("select try_number, state from task_instance where dag_id = ? and run_id = ? and task_id = ?",
                              (dag_id, run_id, task_id)).fetchall()
    return [(int(n), str(s)) for n, s in [*earlier, *current]]


@dataclass
class Demo:
    world: World
    db: Path
    runs: dict[str, str]  # DAG id -> the run the views are checked on


@pytest.fixture(scope="module")
def demo(airflow_harness: AirflowHarness) -> Iterator[Demo]:
    world = next(build_world(Path(airflow_harness.env["NIGHTSHIFT_HOME"]).parent, spec=SPEC))
    for dag_id, conf in (("retrain_churn", None), ("score_churn", None), ("monitor_churn", {"run_checks": False})):
        assert airflow_harness.run(dag_id, LAST, conf=conf) == {LAST: "success"}, airflow_harness.outputs[-1][-4000:]
    db = airflow_harness.home / "airflow" / "airflow.db"
    yield Demo(world, db, {dag_id: _runs(db, dag_id)[-1][0] for dag_id in ("retrain_churn", "score_churn", "monitor_churn")})


@pytest.fixture(scope="module")
def airflow(airflow_harness: AirflowHarness, demo: Demo) -> Iterator[dict[str, str]]:
    """``airflow standalone``, started once the corrupt batch has landed and its backfill exists.

    The backfill is created before the scheduler starts: on SQLite, Airflow 3.3 deletes the runs of
    a backfill whose creation hit a locked DB, and a scheduler that had already picked them up
    crashes (``ObjectDeletedError``), so backfills are made while nothing else writes. The DAG is
    unpaused once the API server answers: a task the scheduler starts before that fails its first
    try at start-up, before it has run (the Task SDK cannot reach the execution API).
    """
    landing = Landing(demo.world.settings.landing_uri)
    landing.write_bytes("activity", BROKEN, batch_file_name("activity", BROKEN), b"event_id;customer_id\nnot,a,csv,file\n")
    airflow_cli(airflow_harness.env, "dags", "reserialize")
    create_backfill(airflow_harness.env, "ingest_activity", BROKEN, BROKEN, "--run-on-latest-version")
    # A 500 from the API says what the database said (the backfill test tells a locked DB from a bug)
    airflow_harness.env["AIRFLOW__API__EXPOSE_STACKTRACE"] = "True"
    with airflow_standalone(airflow_harness) as env:
        airflow_cli(env, "dags", "unpause", "ingest_activity")
        yield env


def test_a_corrupt_batch_fails_under_the_scheduler_and_its_retry_succeeds_after_the_fix(
    airflow_harness: AirflowHarness, demo: Demo, airflow: dict[str, str]
) -> None:
    landing = Landing(demo.world.settings.landing_uri)
    name = batch_file_name("activity", BROKEN)
    [(run_id, kind, state, _)] = wait_until(
        f"the backfill run of ingest_activity {BROKEN} to fail", lambda: [r for r in _runs(demo.db, "ingest_activity") if r[3] == str(BROKEN)],
        lambda seen: bool(seen) and seen[0][2] in ("success", "failed"), timeout=300)
    assert (kind, state) == ("backfill", "failed")

    fixed = next(data for day, source, data in generate(replace(SPEC, days=SPEC.days + 1))
                 if day == BROKEN and source == "activity")
    landing.write_bytes("activity", BROKEN, name, fixed)
    # (the task regex takes no anchors: `^validate_and_load$` matches no task in Airflow 3.3 and clears nothing)
    airflow_cli(airflow, "tasks", "clear", "ingest_activity", "--start-date", BROKEN.isoformat(), "--end-date",
                BROKEN.isoformat(), "--task-regex", "validate_and_load", "--yes")
    tries = wait_until(f"the second try of validate_and_load for {BROKEN} to finish",
                       lambda: _tries(demo.db, "ingest_activity", run_id, "validate_and_load"),
                       lambda seen: len(seen) == 2 and seen[-1][1] in ("success", "failed"), timeout=300)
    assert tries == [(1, "failed"), (2, "success")]
    wait_until(f"the ingest_activity {BROKEN} run to succeed", lambda: [r[2] for r in _runs(demo.db, "ingest_activity") if r[0] == run_id],
               lambda seen: seen == ["success"], timeout=120)
    demo.runs["ingest_activity"] = run_id


@dataclass
class Browser:
    page: Any
    base: str

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return self.page

    def nightshift_tab(self, dag_id: str, run_id: str) -> Any:
        """The run's Nightshift tab, opened as a user does (click), and its frame."""
        page = self.open(f"/dags/{dag_id}/runs/{run_id}")
        page.get_by_role("link", name="Nightshift").last.click()
        page.wait_for_url(f"**/plugin/nightshift-run")
        frame = page.frame_locator("iframe")
        frame.locator("h1").wait_for()
        return frame


@pytest.fixture(scope="module")
def browser(airflow: dict[str, str], airflow_harness: AirflowHarness) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    passwords = Path(airflow["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    password = json.loads(passwords.read_text())["admin"]
    base = f"http://localhost:{airflow['AIRFLOW__API__PORT']}"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            ui = Browser(page, base)
            unauthenticated = page.request.get(f"{base}/nightshift/")
            assert unauthenticated.status == 401, "a Nightshift page answered without login"
            ui.open("/")
            assert "/auth/login" in page.url, page.url
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/")
            yield ui
        finally:
            chromium.close()


def test_the_dag_list_shows_every_nightshift_dag(browser: Browser) -> None:
    page = browser.open("/dags")
    for dag_id in ("ingest_activity", "features_churn", "retrain_churn", "score_churn", "monitor_churn"):
        page.get_by_text(dag_id, exact=True).first.wait_for()
    browser.shot("01-dag-list")


def test_the_failed_try_shows_its_reason_and_the_retry_succeeded(browser: Browser, demo: Demo) -> None:
    run_id = demo.runs["ingest_activity"]
    page = browser.open(f"/dags/ingest_activity/runs/{run_id}")
    # the run's note, written by the scheduler's listener: the failure, marked resolved by the retry
    page.get_by_text("Resolved (the run succeeded later): validate_and_load failed: batch activity/2026-05-01").first.wait_for()
    browser.shot("02-run-note")
    page = browser.open(f"/dags/ingest_activity/runs/{run_id}/tasks/validate_and_load?try_number=1")
    page.get_by_text("FAILED: batch activity/2026-05-01").first.wait_for()  # the reason, before the traceback
    browser.shot("03-failed-try-log")
    page = browser.open(f"/dags/ingest_activity/runs/{run_id}/tasks/validate_and_load?try_number=2")
    page.get_by_text("Task Tries").wait_for()  # try 1 failed, try 2 succeeded: asserted on the metadata DB above
    browser.shot("04-successful-retry")


def test_the_ingest_tab_shows_the_counts_and_the_quarantine_of_that_day(browser: Browser, demo: Demo) -> None:
    from nightshift.warehouse import VALIDATION_RUNS

    frame = browser.nightshift_tab("ingest_activity", demo.runs["ingest_activity"])
    row = demo.world.warehouse.read(VALIDATION_RUNS, {"source": "activity", "batch_date": BROKEN}).iloc[0]
    assert frame.locator("#landed").inner_text() == str(row["landed_rows"])
    assert frame.locator("#quarantined").inner_text() == str(row["quarantined_rows"])
    assert int(row["landed_rows"]) > 0
    browser.shot("05-ingest-tab")


def test_the_retrain_tab_shows_the_gate_report_of_the_first_champion(browser: Browser, demo: Demo) -> None:
    frame = browser.nightshift_tab("retrain_churn", demo.runs["retrain_churn"])
    assert frame.locator("#verdict").inner_text() == "passed"
    assert (frame.locator("#champion-before").inner_text(), frame.locator("#champion-after").inner_text()) == ("none", "1")
    assert frame.locator("#gate tr").count() > 5, "every check of the gate, one row each"
    assert "/runs/" in frame.locator("#mlflow-link").get_attribute("href")
    browser.shot("06-retrain-tab")


def test_the_monitor_tab_shows_drift_rows_and_opens_the_evidently_report(browser: Browser, demo: Demo) -> None:
    frame = browser.nightshift_tab("monitor_churn", demo.runs["monitor_churn"])
    assert frame.locator("#decision").inner_text() in ("not_needed", "requested", "suppressed")
    assert frame.get_by_text("sessions_7d").count() >= 1
    browser.shot("07-monitor-tab")
    report = browser.page.request.get(f"{browser.base}/nightshift/reports/monitor/churn/{LAST}")
    assert report.status == 200 and len(report.body()) > 10_000 and b"<html" in report.body().lower()


def test_the_score_tab_and_the_nav_entry_show_tonights_scores(browser: Browser, demo: Demo) -> None:
    from nightshift.warehouse import predictions_table

    scores = demo.world.warehouse.read(predictions_table("churn"), {"scoring_date": LAST})
    frame = browser.nightshift_tab("score_churn", demo.runs["score_churn"])
    assert frame.locator("#rows-scored").inner_text() == str(len(scores)) and len(scores) > 0
    assert frame.locator("#model-version").inner_text() == "1"
    browser.shot("08-score-tab")
    page = browser.open("/")
    page.get_by_role("link", name="Nightshift").first.click()
    frame = page.frame_locator("iframe")
    frame.locator("#predictions-churn").click()
    assert frame.locator("#rows-scored").inner_text() == str(len(scores))
    browser.shot("09-nav-latest-scores")


def _is_lock(answer: Any) -> bool:
    """Whether Airflow's answer says its SQLite metadata DB was locked."""
    return answer.status in (500, 503) and SQLITE_LOCKED in answer.text().lower()


def _run_backfill(page: Any, dialog: Any, db: Path) -> None:
    """Click the dialog's "Run Backfill" and see the backfill made, as a user would.

    On SQLite, when the scheduler holds the DB for over the 60 s busy timeout, Airflow answers 503
    "Database is locked" (the backfill's insert) or 500 "Database error" (the audit log's insert,
    before the route; the module's Airflow exposes its cause). The UI retries the request itself
    while its button shows it busy; if it gives up, the dialog shows the error and the user clicks
    again. Any other error fails the test with Airflow's words, and so does a dialog that closes with
    no backfill made or a half-made backfill (Airflow commits the backfill before its runs).
    """
    # Airflow's answers to the dialog's POST /api/v2/backfills (Playwright delivers them during its calls)
    answers: list[Any] = []

    def seen(response: Any) -> None:
        if response.url.endswith("/api/v2/backfills") and response.request.method == "POST":
            answers.append(response)

    def said() -> list[str]:
        return [f"{a.status} {a.text()[:300]}" for a in answers]

    button = dialog.get_by_role("button", name="Run Backfill")
    page.on("response", seen)
    try:
        button.click()

        def attempt() -> int | None:
            # the dialog first, then the DB: a dialog closed on success has its backfill in the DB by then
            shown = dialog.is_visible()
            # the UI has stopped retrying when its button is clickable again; it shows its last answer
            enabled = button.evaluate_all("found => found.length > 0 && !found[0].disabled")  # never waits
            made = backfill_runs(db, "ingest_customers", UI_BACKFILL[0])
            if made is not None:
                return made
            assert shown, f"the dialog closed and no backfill exists; Airflow answered: {said()}"
            if answers and not answers[-1].ok and enabled:
                assert _is_lock(answers[-1]), f"Airflow refused the backfill: {said()}"
                print(f"Airflow answered {said()[-1]}; clicking Run Backfill again", flush=True)
                button.click()
            return None

        try:
            made = wait_until("Airflow to create the backfill launched from the dialog", attempt,
                              lambda n: n is not None, timeout=600, interval=3.0)
        except AssertionError as error:
            raise AssertionError(f"{error}; Airflow's answers to the dialog: {said()}") from error
    finally:
        page.remove_listener("response", seen)
    assert made == len(UI_BACKFILL), f"the UI's backfill holds {made} runs, not {len(UI_BACKFILL)}: half made"


def test_a_backfill_launched_from_the_ui_completes(browser: Browser, demo: Demo, airflow: dict[str, str]) -> None:
    page = browser.open("/dags/ingest_customers")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Backfill", exact=True).click()
    for field, day in enumerate(UI_BACKFILL):  # From, To: each opens its own date picker
        trigger = dialog.get_by_test_id("datetime-input").nth(field)
        trigger.click()
        picker = page.locator(f'[id="{trigger.get_attribute("id").replace(":trigger", ":content")}"]')
        picker.get_by_placeholder("YYYY/MM/DD").fill(day.strftime("%Y/%m/%d"))
        picker.get_by_placeholder("HH:mm").fill("00:00")
        page.keyboard.press("Escape")
        picker.wait_for(state="hidden")
    dialog.get_by_text(f"{len(UI_BACKFILL)} runs will be triggered").wait_for()
    browser.shot("10-backfill-dialog")
    _run_backfill(page, dialog, demo.db)
    states = wait_until("the UI's backfill of ingest_customers to finish",
                        lambda: [(r[3], r[2]) for r in _runs(demo.db, "ingest_customers") if r[1] == "backfill"],
                        lambda seen: len(seen) == len(UI_BACKFILL) and all(s in ("success", "failed") for _, s in seen),
                        timeout=420)
    assert sorted(states) == [(str(day), "success") for day in UI_BACKFILL]
    browser.open("/dags/ingest_customers/runs")
    browser.shot("11-backfill-done")
