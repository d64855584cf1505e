"""Use cases as data: one YAML file per use case in ``config/``.

A use case names its entity, label, feature service, sources, schedules and thresholds.
Adding one is adding a file; no Python changes. This module imports only the standard
library and PyYAML, so DAG files may call it while they are parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from nightshift.settings import Settings


class ConfigError(ValueError):
    """A use-case file is missing, malformed or contradicts another one."""


@dataclass(frozen=True)
class SourceConfig:
    """How one landed source is ingested."""

    name: str
    suite: str
    #: How long after the end of day D the ingest waits for D's batch before failing.
    wait_hours: float = 6.0


@dataclass(frozen=True)
class UseCase:
    """One use case, as written in ``config/<name>.yaml``."""

    name: str
    entity: str
    entity_key: str
    label: dict[str, Any]
    feature_service: str
    sources: dict[str, SourceConfig]
    #: The source whose partition for D lists the entities active on D (the scoring spine).
    entity_source: str = ""
    schedules: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    #: The MLflow registered model; ``models:/<model_name>@champion`` is what scoring reads.
    model_name: str = ""
    #: How a challenger is trained: window, splits, LightGBM parameters (nightshift.modeling.training).
    training: dict[str, Any] = field(default_factory=dict)
    #: The evaluation gate's checks and thresholds (nightshift.modeling.evaluation).
    gate: dict[str, Any] = field(default_factory=dict)
    #: Nightly scoring: shards, chunk size, score bands (nightshift.scoring).
    scoring: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


_REQUIRED = ("name", "entity", "entity_key", "label", "feature_service", "sources", "entity_source")


def load_use_case(path: Path) -> UseCase:
    """Parse one use-case file; errors name the file and the missing or wrong key."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read use case: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a use case is a YAML mapping, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"{path}: missing required key(s) {missing}; see config/churn.yaml for a template")
    if data["name"] != path.stem:
        raise ConfigError(f"{path}: 'name: {data['name']}' must match the file name '{path.stem}'")
    sources = {}
    for name, spec in (data["sources"] or {}).items():
        spec = spec or {}
        unknown = set(spec) - {"suite", "wait_hours"}
        if unknown:
            raise ConfigError(f"{path}: source {name!r} has unknown key(s) {sorted(unknown)}")
        sources[name] = SourceConfig(name=name, suite=spec.get("suite", name), wait_hours=float(spec.get("wait_hours", 6)))
    if not sources:
        raise ConfigError(f"{path}: 'sources' is empty; a use case reads at least one landed source")
    if data["entity_source"] not in sources:
        raise ConfigError(f"{path}: entity_source {data['entity_source']!r} is not one of its sources {sorted(sources)}")
    return UseCase(
        name=data["name"],
        entity=data["entity"],
        entity_key=data["entity_key"],
        label=dict(data["label"]),
        feature_service=data["feature_service"],
        sources=sources,
        entity_source=data["entity_source"],
        schedules=dict(data.get("schedules") or {}),
        thresholds=dict(data.get("thresholds") or {}),
        model_name=str(data.get("model_name") or data["name"]),
        training=dict(data.get("training") or {}),
        gate=dict(data.get("gate") or {}),
        scoring=dict(data.get("scoring") or {}),
        raw=data,
    )


def load_use_cases(config_dir: Path) -> dict[str, UseCase]:
    """Every ``*.yaml`` use case in ``config_dir``, by name."""
    return {p.stem: load_use_case(p) for p in sorted(config_dir.glob("*.yaml"))}


def all_sources(use_cases: dict[str, UseCase]) -> dict[str, SourceConfig]:
    """The landed sources of all use cases; two use cases sharing a source must agree on it."""
    merged: dict[str, SourceConfig] = {}
    for use_case in use_cases.values():
        for name, source in use_case.sources.items():
            if name in merged and merged[name] != source:
                raise ConfigError(
                    f"source {name!r} is configured differently by two use cases "
                    f"({merged[name]} vs {source} in {use_case.name}); make them identical"
                )
            merged[name] = source
    return merged


def use_case_of(settings: Settings, name: str) -> UseCase:
    """The use case called ``name`` in the settings' config directory."""
    use_cases = load_use_cases(settings.config_dir)
    if name not in use_cases:
        raise KeyError(f"no use case {name!r} in {settings.config_dir} (have {sorted(use_cases)})")
    return use_cases[name]
