"""Step 1 of a scoring run: pin the champion version, its feature service and the shard count.

:func:`plan` resolves ``models:/<model>@champion`` to one version (pinned for the whole run: an
alias moving mid-run changes nothing), takes its feature service from the version's
``feature_service`` tag, and checks that the model's features are all in that service and that
the service has features for D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from nightshift.settings import Settings
from nightshift.usecase import use_case_of


SHADOW_ALIAS = "challenger"


class NoChampion(RuntimeError):
    """No version carries the alias scoring reads."""


class FeatureContractBroken(RuntimeError):
    """The model needs features its feature service does not serve."""


class ScoringInvariantBroken(RuntimeError):
    """scored + errors != population: an entity would be lost."""


@dataclass(frozen=True)
class ScoringPlan:
    """What one scoring run scores with, resolved once (XCom-friendly)."""

    use_case: str
    scoring_date: str
    alias: str
    model_name: str
    model_version: str
    feature_service: str
    features: list[str]
    shards: int

    @property
    def day(self) -> date:
        return date.fromisoformat(self.scoring_date)

    @property
    def target(self) -> str:
        """The table this plan's scores are published to."""
        from nightshift.warehouse import predictions_table, shadow_predictions_table

        return predictions_table(self.use_case) if self.alias == "champion" else shadow_predictions_table(self.use_case)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)



def plan(settings: Settings, use_case_name: str, day: date, alias: str = "champion") -> ScoringPlan | None:
    """Resolve the model, its feature service and the shard count for scoring ``day``.

    Returns None for the shadow alias when no version carries it.

    Raises:
        NoChampion: no model has passed the gate (for ``champion``).
        FeatureContractBroken: names the model's features missing from its feature service.
        FeatureDataMissing: names D and the ``features`` DAG.
    """
    import mlflow

    from nightshift import features
    from nightshift.modeling import registry

    use_case = use_case_of(settings, use_case_name)
    client = registry.connect(settings)
    version = registry.champion_version(client, use_case.model_name, alias)
    if version is None:
        if alias != "champion":
            return None
        raise NoChampion(
            f"no model has passed the gate yet for {use_case.name} (no `{alias}` alias on registered model "
            f"{use_case.model_name!r}): run the `retrain_{use_case.name}` DAG"
        )
    service = version.tags.get("feature_service")
    if not service:
        raise FeatureContractBroken(
            f"version {version.version} of {use_case.model_name} has no feature_service tag: it was not registered "
            "by Nightshift's retrain; tag it or roll back to a version that has one"
        )
    model = mlflow.lightgbm.load_model(f"models:/{use_case.model_name}/{version.version}")
    needed = model.feature_name()
    served = set(features.feature_names(settings, service))
    missing = [f for f in needed if f not in served]
    if missing:
        raise FeatureContractBroken(
            f"{use_case.model_name} version {version.version} needs features {missing} that its feature service "
            f"{service!r} does not serve: restore them in feature_repo/ or roll back the `{alias}` alias"
        )
    features.check_features_ready(settings, service, day, use_case.name)
    return ScoringPlan(
        use_case=use_case.name,
        scoring_date=day.isoformat(),
        alias=alias,
        model_name=use_case.model_name,
        model_version=str(version.version),
        feature_service=service,
        features=needed,
        shards=max(1, int(use_case.scoring.get("shards", 1))),
    )


def already_published(settings: Settings, scoring_plan: ScoringPlan) -> bool:
    """Partition D of the plan's table holds scores of the plan's model version."""
    from nightshift.warehouse import Warehouse, WarehouseError

    try:
        current = Warehouse.from_uri(settings.warehouse_uri).read(
            scoring_plan.target, {"scoring_date": scoring_plan.day})
    except WarehouseError:
        return False
    return len(current) > 0 and set(current["model_version"].astype(str)) == {scoring_plan.model_version}
