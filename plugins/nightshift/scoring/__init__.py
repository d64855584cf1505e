"""Nightly batch scoring: every entity of day D, by the champion, into tables analysts read.

A scoring run is three steps, so that it can fan out over workers: :mod:`~nightshift.scoring.planning`
(decide the days, pin the model and its feature service), :mod:`~nightshift.scoring.shards` (score
one shard of one day, in chunks, staged under the run's key) and :mod:`~nightshift.scoring.publishing`
(rank and replace partition D atomically, then drop the run's staging).
"""

from nightshift.scoring.planning import (
    SHADOW_ALIAS,
    DayAlreadyScored,
    DayNotScored,
    FeatureContractBroken,
    NoChampion,
    ScoringInvariantBroken,
    ScoringPlan,
    days_to_score,
    plan,
    plans_for,
    run_key_of,
    scored_by,
    scoring_deadline,
)
from nightshift.scoring.publishing import band_of, publish, score_day
from nightshift.scoring.shards import score_shard, shard_of

__all__ = [
    "SHADOW_ALIAS", "DayAlreadyScored", "DayNotScored", "FeatureContractBroken", "NoChampion",
    "ScoringInvariantBroken", "ScoringPlan", "band_of", "days_to_score", "plan", "plans_for",
    "publish", "run_key_of", "score_day", "score_shard", "scored_by", "scoring_deadline", "shard_of",
]
