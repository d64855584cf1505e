"""Nightly batch scoring: every entity of day D, by the champion, into tables analysts read.

A scoring run is three steps, so that it can fan out over workers: :mod:`~nightshift.scoring.planning`
(pin the model and its feature service), :mod:`~nightshift.scoring.shards` (score one shard, in
chunks) and :mod:`~nightshift.scoring.publishing` (rank and replace partition D atomically).
"""

from nightshift.scoring.planning import (
    SHADOW_ALIAS,
    FeatureContractBroken,
    NoChampion,
    ScoringInvariantBroken,
    ScoringPlan,
    already_published,
    plan,
)
from nightshift.scoring.publishing import band_of, publish, score_day
from nightshift.scoring.shards import score_shard, shard_of

__all__ = [
    "SHADOW_ALIAS", "FeatureContractBroken", "NoChampion", "ScoringInvariantBroken", "ScoringPlan",
    "already_published", "band_of", "plan", "publish", "score_day", "score_shard", "shard_of",
]
