"""Use cases as data: one YAML file per use case in ``config/``.

A use case names its task, its entity keys, the dbt models that say who is scored (population)
and what happened to them (label), its feature service, landed sources, start date, schedules,
training, gate, scoring and monitoring settings. Adding one is adding files; no Python changes.

Everything a file names is checked when it is loaded (so at DAG parse time): a missing dbt
model, feature service or suite fails here, naming the file, the key and what exists; so does a
source or suite name that is not an identifier, or a file pattern that is not a glob on a file
name (they become paths). This module imports only the standard library, PyYAML and the name
checks of :mod:`nightshift.landing`, so DAG files may call it while parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nightshift.landing import DEFAULT_PATTERN, SOURCE_NAME, check_pattern, check_source_name

if TYPE_CHECKING:
    from nightshift.settings import Settings

#: Task types a use case may declare; the gate's metrics, scores and bands follow it.
TASKS = ("binary", "regression")
#: Key types a use case may declare, and the pandas dtype each is read and written as.
KEY_TYPES = {"int": "int64", "string": "string"}
_KNOWN = {
    "name", "description", "task", "keys", "population", "label", "feature_service", "sources", "start_date",
    "catchup", "schedules", "model_name", "scoring", "training", "gate", "thresholds", "monitoring",
}


class ConfigError(ValueError):
    """A use-case file is missing, malformed or contradicts another one."""


@dataclass(frozen=True)
class SourceConfig:
    """How one landed source is ingested; names that become paths are checked when it is made."""

    name: str
    suite: str
    #: How long after the end of day D the ingest waits for D's batch before failing.
    wait_hours: float = 6.0
    #: Which files of D's landing folder make the batch (a glob on the file name); others are ignored.
    pattern: str = DEFAULT_PATTERN
    #: A batch whose quarantined share is above this succeeds but raises a "quarantine above threshold" alert.
    alert_quarantined_share: float = 0.05

    def __post_init__(self) -> None:
        try:
            check_source_name(self.name)
            check_pattern(self.pattern)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if not isinstance(self.suite, str) or not SOURCE_NAME.fullmatch(self.suite):
            raise ConfigError(
                f"source {self.name!r}: suite {self.suite!r} is not a lowercase identifier; it names the file "
                "expectations/<suite>.json, so '/', '..' or other characters are refused. Name a suite file there"
            )


@dataclass(frozen=True)
class UseCase:
    """One use case, as written in ``config/<name>.yaml``."""

    name: str
    task: str
    #: Join keys of the scored entity, in order, with their types (``int`` or ``string``).
    keys: dict[str, str]
    #: dbt model: one row per entity to score per day (the keys and ``as_of_date``).
    population_model: str
    #: dbt model: keys, ``as_of_date``, ``label`` and ``label_known_at``.
    label_model: str
    #: Days after D that decide D's label: the purge gap between the time splits.
    horizon_days: int
    feature_service: str
    sources: dict[str, SourceConfig]
    #: The first day the use case has data; a run for an earlier day fails, naming it.
    start_date: date
    catchup: bool = False
    #: Cron expressions (UTC) by DAG kind; ``retrain: null`` means no weekly retrain (drift or by hand only).
    schedules: dict[str, str | None] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    #: The MLflow registered model; ``models:/<model_name>@champion`` is what scoring reads.
    model_name: str = ""
    #: How a challenger is trained: window, splits, LightGBM parameters (nightshift.modeling.training).
    training: dict[str, Any] = field(default_factory=dict)
    #: The evaluation gate's checks and thresholds (nightshift.modeling.evaluation).
    gate: dict[str, Any] = field(default_factory=dict)
    #: Nightly scoring: shards, chunk size, score bands (nightshift.scoring).
    scoring: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key_columns(self) -> list[str]:
        """The join keys, in order."""
        return list(self.keys)

    @property
    def key_dtypes(self) -> dict[str, str]:
        """The pandas dtype of each join key."""
        return {key: KEY_TYPES[kind] for key, kind in self.keys.items()}

    @property
    def population_table(self) -> str:
        """``populations.<model>``: where dbt publishes the population model."""
        return f"populations.{self.population_model}"

    @property
    def label_table(self) -> str:
        """``labels.<model>``: where dbt publishes the label model."""
        return f"labels.{self.label_model}"

    @property
    def dbt_tag(self) -> str:
        """The dbt tag that marks this use case's models (selected with their parents)."""
        return self.name


_REQUIRED = ("name", "task", "keys", "population", "label", "feature_service", "sources", "start_date")


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}")


def load_use_case(path: Path, project_root: Path | None = None) -> UseCase:
    """Parse one use-case file; errors name the file and the missing or wrong key.

    Args:
        project_root: where ``dbt/``, ``feature_repo/`` and ``expectations/`` are checked for the
            models, the feature service and the suites the file names (default: this repo).
    """
    root = project_root or Path(__file__).resolve().parents[2]
    try:
        # the C loader when libyaml is there: every task parses these files with its DAG file
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(path, f"cannot read use case: {exc}") from exc
    if not isinstance(data, dict):
        raise _fail(path, f"a use case is a YAML mapping, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise _fail(path, f"missing required key(s) {missing}; see config/demand.yaml for a template")
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise _fail(path, f"unknown key(s) {unknown}; known keys are {sorted(_KNOWN)}")
    if data["name"] != path.stem:
        raise _fail(path, f"'name: {data['name']}' must match the file name '{path.stem}'")
    if not isinstance(data["name"], str) or not SOURCE_NAME.fullmatch(data["name"]):
        raise _fail(path, f"name: {data['name']!r} is not a lowercase identifier (letters, digits, underscores); "
                          "it names DAGs and tables. Rename the file and its `name`")
    if data["task"] not in TASKS:
        raise _fail(path, f"task: {data['task']!r} is not one of {list(TASKS)}")
    keys = data["keys"]
    if not isinstance(keys, dict) or not keys or any(kind not in KEY_TYPES for kind in keys.values()):
        raise _fail(path, f"keys: give one or more join keys with their types, e.g. {{store_id: string}} "
                          f"(types: {sorted(KEY_TYPES)}); got {keys!r}")
    label = data["label"]
    if not isinstance(label, dict) or "model" not in label or "horizon_days" not in label:
        raise _fail(path, "label: needs `model` (the dbt label model) and `horizon_days`")
    start = data["start_date"]
    if not isinstance(start, date):
        raise _fail(path, f"start_date: {start!r} is not a date (YYYY-MM-DD)")
    use_case = UseCase(
        name=data["name"],
        task=data["task"],
        keys={str(k): str(v) for k, v in keys.items()},
        population_model=str(data["population"]),
        label_model=str(label["model"]),
        horizon_days=int(label["horizon_days"]),
        feature_service=str(data["feature_service"]),
        sources=_sources(path, data["sources"]),
        start_date=start,
        catchup=bool(data.get("catchup", False)),
        schedules=dict(data.get("schedules") or {}),
        thresholds=dict(data.get("thresholds") or {}),
        model_name=str(data.get("model_name") or data["name"]),
        training=dict(data.get("training") or {}),
        gate=dict(data.get("gate") or {}),
        scoring=dict(data.get("scoring") or {}),
        path=path,
        raw=data,
    )
    _check_references(path, use_case, root)
    return use_case


def _sources(path: Path, spec: Any) -> dict[str, SourceConfig]:
    sources = {}
    for name, source in (spec or {}).items():
        source = source or {}
        if not isinstance(source, dict):
            raise _fail(path, f"source {name!r} must be a mapping (suite, wait_hours, pattern, alert_quarantined_share), "
                              f"got {source!r}")
        unknown = set(source) - {"suite", "wait_hours", "pattern", "alert_quarantined_share"}
        if unknown:
            raise _fail(path, f"source {name!r} has unknown key(s) {sorted(unknown)}; "
                              "known: alert_quarantined_share, pattern, suite, wait_hours")
        try:
            sources[name] = SourceConfig(name=name, suite=source.get("suite", name),
                                         wait_hours=float(source.get("wait_hours", 6)),
                                         pattern=source.get("pattern", DEFAULT_PATTERN),
                                         alert_quarantined_share=float(source.get("alert_quarantined_share", 0.05)))
        except ConfigError as exc:
            raise _fail(path, f"sources.{name}: {exc}") from exc
    if not sources:
        raise _fail(path, "'sources' is empty; a use case reads at least one landed source")
    return sources


def _check_references(path: Path, use_case: UseCase, root: Path) -> None:
    """The dbt models, the feature service and the suites the file names exist."""
    models = {p.stem for p in (root / "dbt" / "models").rglob("*.sql")}
    for key, model in (("population", use_case.population_model), ("label.model", use_case.label_model)):
        if model not in models:
            folder = "populations" if key == "population" else "labels"
            have = sorted(p.stem for p in (root / "dbt" / "models" / folder).glob("*.sql"))
            raise _fail(path, f"{key}: {model!r} is not a dbt model; dbt/models/{folder}/ has {have}")
    services = _feature_services(root / "feature_repo")
    if use_case.feature_service not in services:
        raise _fail(path, f"feature_service: {use_case.feature_service!r} is not defined in feature_repo/ "
                          f"(defined: {sorted(services)})")
    for source in use_case.sources.values():
        if not (root / "expectations" / f"{source.suite}.json").exists():
            have = sorted(p.stem for p in (root / "expectations").glob("*.json"))
            raise _fail(path, f"sources.{source.name}.suite: no expectations/{source.suite}.json (have {have})")


def _feature_services(repo: Path) -> set[str]:
    """Names of the ``FeatureService`` objects in the Feast definitions (read as text, not imported)."""
    pattern = re.compile(r"FeatureService\(\s*name\s*=\s*[\"']([\w-]+)[\"']")
    return {name for p in repo.glob("*.py") for name in pattern.findall(p.read_text())}


def load_use_cases(config_dir: Path, project_root: Path | None = None) -> dict[str, UseCase]:
    """Every ``*.yaml`` use case in ``config_dir``, by name; sources shared by two must agree."""
    use_cases = {p.stem: load_use_case(p, project_root) for p in sorted(config_dir.glob("*.yaml"))}
    all_sources(use_cases)
    return use_cases


def all_sources(use_cases: dict[str, UseCase]) -> dict[str, SourceConfig]:
    """The landed sources of all use cases; two use cases sharing a source must agree on it."""
    merged: dict[str, SourceConfig] = {}
    owner: dict[str, UseCase] = {}
    for use_case in use_cases.values():
        for name, source in use_case.sources.items():
            if name in merged and merged[name] != source:
                raise ConfigError(
                    f"source {name!r} is configured differently in {owner[name].path or owner[name].name} "
                    f"({merged[name]}) and in {use_case.path or use_case.name} ({source}); make them identical"
                )
            merged.setdefault(name, source)
            owner.setdefault(name, use_case)
    return merged


def readers_of(use_cases: dict[str, UseCase], source: str) -> list[UseCase]:
    """The use cases that read ``source``."""
    return [u for u in use_cases.values() if source in u.sources]


def use_case_of(settings: Settings, name: str) -> UseCase:
    """The use case called ``name`` in the settings' config directory."""
    use_cases = load_use_cases(settings.config_dir)
    if name not in use_cases:
        raise KeyError(f"no use case {name!r} in {settings.config_dir} (have {sorted(use_cases)})")
    return use_cases[name]


class RunBeforeStart(ConfigError):
    """A DAG run is for a day before the use case's ``start_date``."""


def check_run_date(dag_id: str, day: date, use_cases: list[UseCase]) -> None:
    """Fail, naming the date and the setting, when ``day`` precedes the start of every use case.

    Airflow records a run whose logical date precedes its DAG's ``start_date`` as a success with
    no task at all; the guard task that calls this turns that silence into a failure.
    """
    start = min(u.start_date for u in use_cases)
    if day < start:
        owner = min(use_cases, key=lambda u: u.start_date)
        raise RunBeforeStart(
            f"{dag_id}: the run for {day} precedes start_date {start} of use case {owner.name} "
            f"({owner.path or 'config/' + owner.name + '.yaml'}, key `start_date`): nothing was run. Trigger a day "
            f"on or after {start}, or move start_date earlier once that history has landed"
        )
