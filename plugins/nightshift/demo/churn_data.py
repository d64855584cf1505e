"""Deterministic synthetic data for the churn demo: customers, activity and cancellations.

Used by ``make demo``, the tests and the benchmarks. The same ``DatagenSpec`` always gives
byte-identical CSV files; nothing here reads the clock, the environment (except ``main``)
or global random state. This module only makes bytes: it never validates or ingests them.

Generative story
----------------
A population of customers (initially ``customers`` of them, signed up uniformly over the two
years before ``start``) is simulated day by day from ``start``. A customer has a plan
(basic/standard/premium), a region, an acquisition channel and a personal price multiplier,
so ``monthly_price`` is the plan's list price times 0.8-1.25. About 0.45 % of the initial
count signs up every day, roughly replacing those who cancel, so the population stays stable.
Simulation starts 56 days before ``start`` (a burn-in that is never written) so that the
first written days already have behavioural history.

Each customer has a latent engagement ``z = base + fade``. ``base`` is fixed per customer;
``fade`` is a slow decline: any day a customer may start fading (losing 0.04 of ``z`` per day)
and may stop again, after which ``fade`` recovers slowly. Separately, "service issue" episodes
(mean 8 days) raise the rate of support tickets. From ``z`` and the issue state come the
observable daily behaviour: whether the customer is active at all, ``sessions`` (Poisson),
``minutes`` (Gamma per session), occasional ``spend``, ``support_tickets`` and rare plan
upgrades (more likely when engaged) or downgrades (when disengaged). A plan change takes
effect the same day: the evening snapshot shows the new plan at the new plan's price.

The daily cancellation hazard is a logistic function of what an observer can compute from
the files (so a model can learn it), plus unobserved per-customer frailty (so it cannot learn
it perfectly): low 28-day sessions, a drop of the 7-day level below the 28-day level, support
tickets over the last four weeks, days since the last activity, price above the plan's list
price, tenure (the first months are riskier), plan (basic churns more) and a little region and
channel. The hazard for day D uses behaviour up to D-1. A customer who cancels on D has no
activity on D and is absent from D's snapshot and every later file. About 9-13 % of the
customers in a snapshot cancel within the next 30 days (up to 16 % in the first days, while
the initial population settles).

Labels: (customer, D) is positive when the customer cancels in (D, D+30]; they therefore
arrive 30 days late, through the ``cancellations`` source.

Learnability (measured when this generator was tuned): 3000 customers x 120 days, seed 7,
LightGBM (300 trees, lr 0.03, 15 leaves) on rolling 7/28-day sums and means of sessions,
minutes, spend and tickets, days since last activity, tenure, plan, region, channel and price;
trained on days 30-70, tested on days 71-90: holdout AUC 0.785 (seeds 1, 2, 3: 0.796, 0.801,
0.798); about 10 % positives.

Drift
-----
From ``covariate_drift_start`` the inputs shift but the hazard as a function of the inputs
does not: sessions (and so minutes) drop by 30 % and new signups come mostly from ``east``
(and half again as many sign up), so the region mix moves toward ``east``. Churn rises because
behaviour looks worse, not because the rules changed.
From ``concept_drift_start`` the rules change: support tickets stop mattering, usage matters
half as much and price matters much more (the price-above-list effect triples and the absolute
price level starts to count); the overall churn rate stays about the same. Measured with the
setup above and drift from day 71, on days 101-120: a model trained before the drift scores AUC
0.59, one retrained on days 71-100 scores 0.80. Covariate drift from day 71 lifts the 30-day
churn rate from 9 % to 12 % and costs the old model little (0.74 against 0.76 retrained).
Days before either date are byte-identical to a run without drift, because each day draws
from its own random stream derived from (seed, day).

Bad rows and broken files
-------------------------
``bad_rates`` maps a class from ``BAD_INPUT_CLASSES`` to the fraction of rows of every batch
that get that defect, each class drawn independently from its own stream (turning one class
on never changes the clean rows or another class's rows):
``null_required`` blanks a required field; ``out_of_range`` writes an impossible number
(sessions -3, minutes 5000, price 0 or 900, customer_id 0); ``unknown_category`` writes a value
outside the vocabulary (plan "platinum", region "mars", plan_change "sideways", reason
"bored"); ``duplicate_key`` appends a copy of an existing row (same key); ``bad_event_time``
moves the timestamp 10 days before or 400 days after the batch day; ``uncoercible`` writes
text where a number or timestamp belongs ("abc", "not-a-date").
On ``broken_day`` the ``broken_source`` file is the first third of the real CSV followed by
random bytes that include a NUL and are not valid UTF-8, as a transfer cut short would leave.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SOURCES: tuple[str, ...] = ("customers", "activity", "cancellations")
BAD_INPUT_CLASSES: tuple[str, ...] = (
    "null_required",
    "out_of_range",
    "unknown_category",
    "duplicate_key",
    "bad_event_time",
    "uncoercible",
)

# The contract other code validates against: do not rename, reorder or add columns.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "signup_date", "plan", "region", "channel", "monthly_price", "snapshot_at"),
    "activity": (
        "event_id",
        "customer_id",
        "event_time",
        "sessions",
        "minutes",
        "spend",
        "support_tickets",
        "plan_change",
    ),
    "cancellations": ("customer_id", "cancelled_at", "reason"),
}

PLANS: tuple[str, ...] = ("basic", "standard", "premium")
PLAN_LIST_PRICE: tuple[float, ...] = (12.99, 24.99, 49.99)
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
CHANNELS: tuple[str, ...] = ("web", "mobile", "partner")
PLAN_CHANGES: tuple[str, ...] = ("none", "upgrade", "downgrade")
REASONS: tuple[str, ...] = ("price", "service", "competitor", "other")

_BURN_IN_DAYS = 56
_HISTORY_DAYS = 730
_SNAPSHOT_CLOCK = "T23:00:00"
# Events and cancellations happen before the 23:00 snapshot, so the snapshot reflects them.
_LAST_EVENT_SECOND = 23 * 3600
_DAILY_SIGNUP_RATE = 0.0045
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# Stream tags: each purpose draws from its own stream so that knobs do not disturb each other.
_STREAM_SIMULATE = 0
_STREAM_POPULATION = 1
_STREAM_BAD_ROWS = 2
_STREAM_BROKEN = 3
_STREAM_SINGLE_BATCH = 4


@dataclass(frozen=True)
class DatagenSpec:
    """The knobs of one synthetic data set; equal specs give byte-identical files.

    Dates may be given as ``datetime.date`` or ISO strings (``"2026-01-01"``).
    """

    customers: int = 2000
    start: date = date(2026, 1, 1)
    days: int = 60
    seed: int = 7
    covariate_drift_start: date | None = None
    #: The share of sessions customers keep from ``covariate_drift_start`` (0.7: usage drops by 30 %;
    #: lower values model an abrupt change, e.g. an app release that logs fewer sessions).
    covariate_session_keep: float = 0.7
    concept_drift_start: date | None = None
    bad_rates: dict[str, float] = field(default_factory=dict, hash=False)
    broken_day: date | None = None
    broken_source: str = "activity"

    def __post_init__(self) -> None:
        for name in ("start", "covariate_drift_start", "concept_drift_start", "broken_day"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, date.fromisoformat(value))
        # A private copy: a caller mutating their dict must not change a frozen spec.
        object.__setattr__(self, "bad_rates", _checked_bad_rates(self.bad_rates))
        if not 0.0 <= self.covariate_session_keep <= 1.0:
            raise ValueError(f"DatagenSpec.covariate_session_keep is {self.covariate_session_keep}: use a share in [0, 1]")
        if self.customers < 1:
            raise ValueError(f"DatagenSpec.customers is {self.customers}: it must be at least 1")
        if self.days < 1:
            raise ValueError(f"DatagenSpec.days is {self.days}: it must be at least 1")
        if self.seed < 0:
            raise ValueError(f"DatagenSpec.seed is {self.seed}: it must be a non-negative integer")
        if self.broken_source not in SOURCES:
            raise ValueError(
                f"DatagenSpec.broken_source is {self.broken_source!r}: use one of {', '.join(SOURCES)}"
            )
        if self.broken_day is not None and not self.start <= self.broken_day <= self.end:
            raise ValueError(
                f"DatagenSpec.broken_day {self.broken_day} is outside the generated days "
                f"{self.start}..{self.end}: pick a day in that range or raise `days`"
            )

    @property
    def end(self) -> date:
        """The last generated day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)


def _checked_bad_rates(bad_rates: dict[str, float] | None) -> dict[str, float]:
    """Validate bad-row rates: known classes only, each a fraction in [0, 1]."""
    rates = dict(bad_rates or {})
    unknown = sorted(set(rates) - set(BAD_INPUT_CLASSES))
    if unknown:
        raise ValueError(
            f"bad_rates has unknown class(es) {', '.join(map(repr, unknown))}: "
            f"allowed classes are {', '.join(BAD_INPUT_CLASSES)}"
        )
    for name, rate in rates.items():
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"bad_rates[{name!r}] is {rate}: a rate is a fraction between 0 and 1")
    return {name: float(rate) for name, rate in rates.items()}


@dataclass(frozen=True)
class _Regime:
    """The parameters of the world on one day; drift switches them."""

    session_keep: float = 1.0
    region_mix: tuple[float, ...] = (0.28, 0.24, 0.20, 0.28)
    signup_boost: float = 1.0
    engagement_coef: float = 2.5
    ticket_coef: float = 0.55
    price_rel_coef: float = 2.0
    price_level_coef: float = 0.0
    intercept_shift: float = 0.0


def _regime(spec: DatagenSpec, day: date) -> _Regime:
    """The regime in force on ``day`` given the drift dates of ``spec``."""
    regime: dict[str, Any] = {}
    if spec.covariate_drift_start is not None and day >= spec.covariate_drift_start:
        regime.update(session_keep=spec.covariate_session_keep, region_mix=(0.15, 0.15, 0.55, 0.15), signup_boost=1.5)
    if spec.concept_drift_start is not None and day >= spec.concept_drift_start:
        # The shift keeps the overall churn rate near the old one: only who churns changes.
        regime.update(
            engagement_coef=1.2,
            ticket_coef=0.0,
            price_rel_coef=6.0,
            price_level_coef=1.5,
            intercept_shift=1.0,
        )
    return _Regime(**regime)


# ---------------------------------------------------------------------------------------------
# Simulation. The population is a dict of equally long numpy arrays, one entry per customer.
# ---------------------------------------------------------------------------------------------

_PLAN_MIX = (0.45, 0.35, 0.20)
_CHANNEL_MIX = (0.50, 0.35, 0.15)
_PLAN_EFFECT = (0.25, 0.0, -0.15)
_REGION_EFFECT = (0.0, 0.12, 0.05, -0.05)
_CHANNEL_EFFECT = (0.0, 0.08, 0.20)
_HAZARD_INTERCEPT = -7.8


def _new_customers(
    rng: np.random.Generator, first_id: int, signup: np.ndarray, regime: _Regime
) -> dict[str, np.ndarray]:
    """Sample profiles and latent traits for customers with the given signup ordinals."""
    import numpy as np

    n = len(signup)
    plan = rng.choice(3, size=n, p=_PLAN_MIX).astype(np.int8)
    price_mult = np.round(rng.uniform(0.8, 1.25, size=n), 2)
    return {
        "customer_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "signup": np.asarray(signup, dtype=np.int64),
        "plan": plan,
        "region": rng.choice(4, size=n, p=regime.region_mix).astype(np.int8),
        "channel": rng.choice(3, size=n, p=_CHANNEL_MIX).astype(np.int8),
        "price_mult": price_mult,
        "price": _list_price(plan, price_mult),
        "base": rng.normal(0.0, 0.8, size=n),
        "frailty": rng.normal(0.0, 0.3, size=n),
        "fade": np.zeros(n),
        "fading": np.zeros(n, dtype=bool),
        "issue": np.zeros(n, dtype=bool),
        "ema7_sessions": np.zeros(n),
        "ema28_sessions": np.zeros(n),
        "ema28_tickets": np.zeros(n),
        "observed_days": np.zeros(n, dtype=np.int64),
        "last_row": np.asarray(signup, dtype=np.int64),
    }


def _list_price(plan: np.ndarray, price_mult: np.ndarray) -> np.ndarray:
    """A customer's monthly price: the plan's list price times their personal multiplier."""
    import numpy as np

    return np.round(np.asarray(PLAN_LIST_PRICE)[plan] * price_mult, 2)


def _take(population: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    """The customers selected by a boolean mask or index array."""
    return {name: values[keep] for name, values in population.items()}


def _concat(population: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The population with ``new`` customers appended."""
    import numpy as np

    return {name: np.concatenate([values, new[name]]) for name, values in population.items()}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _hazard(population: dict[str, np.ndarray], today: int, regime: _Regime) -> np.ndarray:
    """Daily probability of cancelling on ``today``, from behaviour up to yesterday."""
    import numpy as np

    observed = np.maximum(population["observed_days"], 1)
    # EMAs start at zero on signup; dividing by the weight seen so far makes them a mean over
    # the days the customer has existed, which is what rolling means over the files show.
    sessions7 = np.log1p(population["ema7_sessions"] / (1.0 - (6 / 7) ** observed))
    sessions28 = np.log1p(population["ema28_sessions"] / (1.0 - (27 / 28) ** observed))
    tickets28 = 28.0 * population["ema28_tickets"] / (1.0 - (27 / 28) ** observed)
    tenure = today - population["signup"]
    idle_days = today - 1 - population["last_row"]
    plan = population["plan"]
    price = population["price"]
    list_price = np.asarray(PLAN_LIST_PRICE)[plan]
    eta = (
        _HAZARD_INTERCEPT
        + regime.intercept_shift
        - regime.engagement_coef * (sessions28 - 1.0)
        - 1.8 * (sessions7 - sessions28)
        + regime.ticket_coef * np.minimum(tickets28, 6.0)
        + 1.5 * np.clip(idle_days - 7, 0, 21) / 21
        + regime.price_rel_coef * (price / list_price - 1.0)
        + regime.price_level_coef * np.log(price / PLAN_LIST_PRICE[1])
        + np.asarray(_PLAN_EFFECT)[plan]
        + np.asarray(_REGION_EFFECT)[population["region"]]
        + np.asarray(_CHANNEL_EFFECT)[population["channel"]]
        + 1.0 * np.exp(-tenure / 45.0)
        + population["frailty"]
    )
    return _sigmoid(eta)


def _behave(
    population: dict[str, np.ndarray], today: int, regime: _Regime, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Simulate one day of behaviour for everyone in ``population``; updates it in place.

    Returns per-customer arrays: ``has_row`` (whether an activity row is written) and the
    activity fields.
    """
    import numpy as np

    n = len(population["customer_id"])
    u_fade, u_issue, u_active, u_spend, u_plan = rng.random((5, n))
    fading = population["fading"]
    fading = np.where(fading, u_fade >= 0.03, u_fade < 0.006)
    fade = np.where(fading, population["fade"] - 0.04, population["fade"] * 0.97)
    issue = np.where(population["issue"], u_issue >= 1 / 8, u_issue < 0.008)
    z = population["base"] + fade

    active = u_active < _sigmoid(0.1 + 1.3 * z)
    sessions = np.where(active, 1 + rng.poisson(np.exp(0.6 + 0.5 * z)), 0)
    if regime.session_keep < 1.0:
        sessions = rng.binomial(sessions, regime.session_keep)
    sessions = np.minimum(sessions, 200)
    minutes = np.minimum(rng.gamma(2.0 * sessions, 5.0 * np.exp(0.25 * z)), 1440.0)
    minutes = np.round(minutes, 1)
    plan = population["plan"]
    spend_factor = np.asarray((1.0, 1.5, 2.5))[plan]
    buys = active & (u_spend < 0.06 * (1.0 + _sigmoid(z)))
    spend = np.where(buys, np.round(np.minimum(rng.gamma(2.0, 12.0, size=n) * spend_factor, 10000.0), 2), 0.0)
    tickets = np.minimum(rng.poisson(0.01 + 0.35 * issue + 0.02 * _sigmoid(-2.0 * z)), 50)

    p_up = 0.0015 * np.exp(0.6 * z) * (plan < 2)
    p_down = 0.0015 * np.exp(-0.6 * z) * (plan > 0)
    plan_change = np.where(u_plan < p_up, 1, np.where(u_plan < p_up + p_down, 2, 0)).astype(np.int8)
    plan = np.where(plan_change == 1, plan + 1, np.where(plan_change == 2, plan - 1, plan)).astype(np.int8)

    has_row = active | (tickets > 0) | (plan_change > 0)
    seconds = rng.integers(0, _LAST_EVENT_SECOND, size=n)

    population["fading"] = fading
    population["fade"] = fade
    population["issue"] = issue
    population["plan"] = plan
    new_price = _list_price(plan, population["price_mult"])
    population["price"] = np.where(plan_change > 0, new_price, population["price"])
    population["ema7_sessions"] += (sessions - population["ema7_sessions"]) / 7.0
    population["ema28_sessions"] += (sessions - population["ema28_sessions"]) / 28.0
    population["ema28_tickets"] += (tickets - population["ema28_tickets"]) / 28.0
    population["observed_days"] += 1
    population["last_row"] = np.where(has_row, today, population["last_row"])
    return {
        "has_row": has_row,
        "sessions": sessions,
        "minutes": minutes,
        "spend": spend,
        "tickets": tickets,
        "plan_change": plan_change,
        "seconds": seconds,
    }


def _cancel_reasons(
    rng: np.random.Generator, population: dict[str, np.ndarray], regime: _Regime
) -> np.ndarray:
    """A reason index per customer, leaning to whatever drove their hazard."""
    import numpy as np

    n = len(population["customer_id"])
    list_price = np.asarray(PLAN_LIST_PRICE)[population["plan"]]
    price_push = np.maximum(population["price"] / list_price - 1.0, 0.0) * regime.price_rel_coef
    tickets28 = 28.0 * population["ema28_tickets"]
    weights = np.column_stack(
        [0.6 + price_push, 0.4 + 0.3 * tickets28, np.full(n, 0.5), np.full(n, 0.3)]
    )
    cumulative = weights.cumsum(axis=1) / weights.sum(axis=1, keepdims=True)
    return (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, 3)


@dataclass
class _Day:
    """What one simulated day produces, before formatting."""

    customers: dict[str, np.ndarray]
    activity: dict[str, np.ndarray]
    cancellations: dict[str, np.ndarray]


def _simulate(spec: DatagenSpec) -> Iterator[tuple[date, _Day]]:
    """Run the world forward from the burn-in and yield every written day's raw tables."""
    import numpy as np

    start = spec.start.toordinal()
    rng = np.random.default_rng([spec.seed, start, _STREAM_POPULATION])
    signup = np.sort(rng.integers(start - _HISTORY_DAYS, start, size=spec.customers))
    population = _new_customers(rng, 1, signup, _Regime())
    next_id = spec.customers + 1

    # Burn-in: behaviour only (no cancellations, signups or output) so day one has history.
    for today in range(start - _BURN_IN_DAYS, start):
        rng = np.random.default_rng([spec.seed, today, _STREAM_SIMULATE])
        live = np.flatnonzero(population["signup"] <= today)
        part = _take(population, live)
        _behave(part, today, _Regime(), rng)
        for name, values in part.items():
            population[name][live] = values

    for offset in range(spec.days):
        day = spec.start + timedelta(days=offset)
        today = day.toordinal()
        regime = _regime(spec, day)
        rng = np.random.default_rng([spec.seed, today, _STREAM_SIMULATE])

        cancel = rng.random(len(population["customer_id"])) < _hazard(population, today, regime)
        leaving = _take(population, cancel)
        cancellations = {
            "customer_id": leaving["customer_id"],
            "seconds": rng.integers(0, _LAST_EVENT_SECOND, size=int(cancel.sum())),
            "reason": _cancel_reasons(rng, leaving, regime),
        }
        population = _take(population, ~cancel)

        signups = int(rng.poisson(_DAILY_SIGNUP_RATE * spec.customers * regime.signup_boost))
        new = _new_customers(rng, next_id, np.full(signups, today), regime)
        next_id += signups
        population = _concat(population, new)

        behaviour = _behave(population, today, regime, rng)
        rows = behaviour["has_row"]
        activity = {name: values[rows] for name, values in behaviour.items() if name != "has_row"}
        activity["customer_id"] = population["customer_id"][rows]
        # Upstream event logs arrive in time order, not in customer order.
        order = np.argsort(activity["seconds"], kind="stable")
        activity = {name: values[order] for name, values in activity.items()}
        snapshot_fields = ("customer_id", "signup", "plan", "region", "channel", "price")
        snapshot = {name: population[name].copy() for name in snapshot_fields}
        yield day, _Day(snapshot, activity, cancellations)


# ---------------------------------------------------------------------------------------------
# Formatting: every column becomes an array of strings, so bad rows can put anything anywhere.
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _clock() -> np.ndarray:
    """``"THH:MM:SS"`` for every second of a day, indexed by second."""
    import numpy as np
    import pandas as pd

    seconds = pd.Series(np.arange(86400))
    hours = (seconds // 3600).astype(str).str.zfill(2)
    minutes = (seconds // 60 % 60).astype(str).str.zfill(2)
    secs = (seconds % 60).astype(str).str.zfill(2)
    return ("T" + hours + ":" + minutes + ":" + secs).to_numpy(dtype=object)


def _timestamps(day: date, seconds: np.ndarray) -> np.ndarray:
    """ISO timestamps at ``seconds`` after midnight of ``day``."""
    return day.isoformat() + _clock()[seconds]


def _dates(ordinals: np.ndarray) -> np.ndarray:
    """ISO dates for an array of proleptic Gregorian ordinals."""
    import numpy as np

    days = (np.asarray(ordinals, dtype=np.int64) - _EPOCH_ORDINAL).astype("datetime64[D]")
    return days.astype(str).astype(object)


def _integers(values: np.ndarray) -> np.ndarray:
    """Integers as decimal strings."""
    import numpy as np
    import pandas as pd

    return pd.Series(np.asarray(values, dtype=np.int64)).astype(str).to_numpy(dtype=object)


def _fixed(values: np.ndarray, decimals: int) -> np.ndarray:
    """Non-negative numbers as strings with exactly ``decimals`` decimals (e.g. ``"12.50"``)."""
    import numpy as np
    import pandas as pd

    scale = 10**decimals
    # Integer arithmetic and a table of fractions: exact, and ~5x faster than printf per value.
    scaled = np.rint(np.asarray(values, dtype=float) * scale).astype(np.int64)
    whole = pd.Series(scaled // scale).astype(str).to_numpy(dtype=object)
    fractions = np.array([f".{i:0{decimals}d}" for i in range(scale)], dtype=object)
    return whole + fractions[scaled % scale]


def _labels(vocabulary: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """Category codes as their names."""
    import numpy as np

    return np.asarray(vocabulary, dtype=object)[codes]


def _format_customers(raw: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray]:
    """The snapshot columns of the contract, as strings."""
    import numpy as np

    n = len(raw["customer_id"])
    return {
        "customer_id": _integers(raw["customer_id"]),
        "signup_date": _dates(raw["signup"]),
        "plan": _labels(PLANS, raw["plan"]),
        "region": _labels(REGIONS, raw["region"]),
        "channel": _labels(CHANNELS, raw["channel"]),
        "monthly_price": _fixed(raw["price"], 2),
        "snapshot_at": np.full(n, day.isoformat() + _SNAPSHOT_CLOCK, dtype=object),
    }


def _format_activity(raw: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray]:
    """The activity columns of the contract, as strings."""
    customer_id = _integers(raw["customer_id"])
    return {
        "event_id": "a-" + customer_id + day.strftime("-%Y%m%d"),
        "customer_id": customer_id,
        "event_time": _timestamps(day, raw["seconds"]),
        "sessions": _integers(raw["sessions"]),
        "minutes": _fixed(raw["minutes"], 1),
        "spend": _fixed(raw["spend"], 2),
        "support_tickets": _integers(raw["tickets"]),
        "plan_change": _labels(PLAN_CHANGES, raw["plan_change"]),
    }


def _format_cancellations(raw: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray]:
    """The cancellation columns of the contract, as strings."""
    return {
        "customer_id": _integers(raw["customer_id"]),
        "cancelled_at": _timestamps(day, raw["seconds"]),
        "reason": _labels(REASONS, raw["reason"]),
    }


_FORMATTERS: dict[str, Callable[[dict[str, Any], date], dict[str, Any]]] = {
    "customers": _format_customers,
    "activity": _format_activity,
    "cancellations": _format_cancellations,
}


# ---------------------------------------------------------------------------------------------
# Bad rows. A variant is (column, replacement): a constant string or a function of the current
# values and the batch day.
# ---------------------------------------------------------------------------------------------


def _shifted(days: int) -> Callable[[np.ndarray, date], np.ndarray]:
    """A replacement that moves a timestamp ``days`` away from the batch day, keeping the clock."""
    def shift(values: np.ndarray, day: date) -> np.ndarray:
        import pandas as pd

        current = pd.Series(values, dtype=object).astype(str)
        # A value another class already damaged has no clock to keep: use noon.
        clock = current.str.slice(10).where(current.str.len() == 19, "T12:00:00")
        return ((day + timedelta(days=days)).isoformat() + clock).to_numpy(dtype=object)

    return shift


_BAD_VARIANTS: dict[str, dict[str, tuple[tuple[str, Any], ...]]] = {
    "customers": {
        "null_required": (("customer_id", ""), ("plan", ""), ("monthly_price", ""), ("snapshot_at", "")),
        "out_of_range": (("monthly_price", "0.00"), ("monthly_price", "900.00"), ("customer_id", "0")),
        "unknown_category": (("plan", "platinum"), ("region", "mars"), ("channel", "fax")),
        "bad_event_time": (("snapshot_at", _shifted(-10)), ("snapshot_at", _shifted(400))),
        "uncoercible": (
            ("customer_id", "abc"),
            ("monthly_price", "abc"),
            ("signup_date", "not-a-date"),
            ("snapshot_at", "not-a-date"),
        ),
    },
    "activity": {
        "null_required": (("event_id", ""), ("customer_id", ""), ("event_time", ""), ("sessions", "")),
        "out_of_range": (
            ("sessions", "-3"),
            ("minutes", "5000.0"),
            ("spend", "25000.00"),
            ("support_tickets", "99"),
        ),
        "unknown_category": (("plan_change", "sideways"),),
        "bad_event_time": (("event_time", _shifted(-10)), ("event_time", _shifted(400))),
        "uncoercible": (
            ("sessions", "abc"),
            ("minutes", "abc"),
            ("spend", "n/a"),
            ("event_time", "not-a-date"),
        ),
    },
    "cancellations": {
        "null_required": (("customer_id", ""), ("cancelled_at", ""), ("reason", "")),
        "out_of_range": (("customer_id", "0"), ("customer_id", "-1")),
        "unknown_category": (("reason", "bored"),),
        "bad_event_time": (("cancelled_at", _shifted(-10)), ("cancelled_at", _shifted(400))),
        "uncoercible": (("customer_id", "abc"), ("cancelled_at", "not-a-date")),
    },
}

# Blanks last so a blanked field stays blank; duplicates first so copies are of clean rows.
_BAD_ORDER = (
    "duplicate_key",
    "bad_event_time",
    "out_of_range",
    "unknown_category",
    "uncoercible",
    "null_required",
)


def _add_bad_rows(
    columns: dict[str, np.ndarray], source: str, day: date, seed: int, bad_rates: dict[str, float]
) -> dict[str, np.ndarray]:
    """Apply each requested bad-row class to its own random fraction of the rows."""
    import numpy as np

    for name in _BAD_ORDER:
        rate = bad_rates.get(name, 0.0)
        if rate <= 0.0:
            continue
        rng = np.random.default_rng(
            [seed, day.toordinal(), _STREAM_BAD_ROWS, SOURCES.index(source), BAD_INPUT_CLASSES.index(name)]
        )
        # One uniform per row decides both whether and how a row is damaged, so the rows
        # picked do not depend on how many rows duplicate_key appended after them.
        uniform = rng.random(len(next(iter(columns.values()))))
        picked = np.flatnonzero(uniform < rate)
        if name == "duplicate_key":
            columns = {col: np.concatenate([values, values[picked]]) for col, values in columns.items()}
            continue
        variants = _BAD_VARIANTS[source][name]
        choice = np.minimum((uniform[picked] / rate * len(variants)).astype(np.int64), len(variants) - 1)
        for number, (column, replacement) in enumerate(variants):
            rows = picked[choice == number]
            if len(rows) == 0:
                continue
            values = columns[column].copy()
            values[rows] = replacement(values[rows], day) if callable(replacement) else replacement
            columns[column] = values
    return columns


def _to_csv(columns: dict[str, np.ndarray], source: str) -> bytes:
    """UTF-8 CSV with the contract's header; every value is already a string."""
    import pandas as pd

    frame = pd.DataFrame(columns, columns=list(COLUMNS[source]))
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _broken(data: bytes, day: date, seed: int, source: str) -> bytes:
    """The file a transfer cut short leaves: a valid head, then binary garbage."""
    import numpy as np

    rng = np.random.default_rng([seed, day.toordinal(), _STREAM_BROKEN, SOURCES.index(source)])
    garbage = rng.integers(0, 256, size=512, dtype=np.uint8).tobytes()
    # 0xFF never occurs in UTF-8 and NUL trips C-based readers: the file fails either way.
    return data[: max(len(data) // 3, 1)] + b"\xff\x00" + garbage


def _batch_bytes(
    source: str, raw: dict[str, np.ndarray], day: date, seed: int, bad_rates: dict[str, float]
) -> bytes:
    """Format one source's raw table, add the requested bad rows and write it as CSV."""
    columns = _FORMATTERS[source](raw, day)
    if bad_rates:
        columns = _add_bad_rows(columns, source, day, seed, bad_rates)
    return _to_csv(columns, source)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def generate(spec: DatagenSpec) -> Iterator[tuple[date, str, bytes]]:
    """Yield (day, source, csv_bytes) for every day and source, in day order.

    Args:
        spec: the knobs of the data set.

    Returns:
        An iterator over one CSV per (day, source), sources in ``SOURCES`` order.
    """
    for day, tables in _simulate(spec):
        for source in SOURCES:
            data = _batch_bytes(source, getattr(tables, source), day, spec.seed, spec.bad_rates)
            if day == spec.broken_day and source == spec.broken_source:
                data = _broken(data, day, spec.seed, source)
            yield day, source, data


def batch_file_name(source: str, day: date) -> str:
    """The name a generated batch is landed under: ``<source>_<YYYY-MM-DD>.csv``."""
    return f"{source}_{day.isoformat()}.csv"


def write_landing(spec: DatagenSpec, landing_uri: str) -> list[str]:
    """Write every batch to the landing zone; return the URIs written.

    Args:
        spec: the knobs of the data set.
        landing_uri: a local directory or ``s3://bucket/prefix``.

    Returns:
        The URI of every file written, in generation order.
    """
    from nightshift.landing import Landing

    landing = Landing(landing_uri)
    return [
        landing.write_bytes(source, day, batch_file_name(source, day), data)
        for day, source, data in generate(spec)
    ]


def single_day_batch(
    source: str, rows: int, day: date, seed: int, bad_rates: dict[str, float] | None = None
) -> bytes:
    """One source's CSV for ``day`` with about ``rows`` clean rows, for benchmarks.

    The rows come from a freshly sampled population of ``rows`` customers in steady state
    (no history, no day-to-day consistency): every customer gets one activity row, one
    snapshot row, or one cancellation. Bad rows are added on top, as in ``generate``.

    Args:
        source: one of ``SOURCES``.
        rows: how many clean rows to produce (duplicates from ``bad_rates`` come on top).
        day: the batch day.
        seed: the random seed.
        bad_rates: fraction of rows per class in ``BAD_INPUT_CLASSES``.

    Returns:
        The CSV bytes.
    """
    import numpy as np

    if source not in SOURCES:
        raise ValueError(f"single_day_batch: source {source!r} is not one of {', '.join(SOURCES)}")
    if rows < 0:
        raise ValueError(f"single_day_batch: rows is {rows}: it must be zero or more")
    rates = _checked_bad_rates(bad_rates)
    today = day.toordinal()
    rng = np.random.default_rng([seed, today, _STREAM_SINGLE_BATCH, SOURCES.index(source)])
    signup = rng.integers(today - _HISTORY_DAYS, today + 1, size=rows)
    population = _new_customers(rng, 1, signup, _Regime())
    if source == "customers":
        raw = population
    elif source == "activity":
        behaviour = _behave(population, today, _Regime(), rng)
        raw = {**behaviour, "customer_id": population["customer_id"]}
    else:
        raw = {
            "customer_id": population["customer_id"],
            "seconds": rng.integers(0, _LAST_EVENT_SECOND, size=rows),
            "reason": _cancel_reasons(rng, population, _Regime()),
        }
    return _batch_bytes(source, raw, day, seed, rates)


def main(argv: list[str] | None = None) -> int:
    """Command line: generate a data set and write it to a landing zone."""
    from nightshift.demo import cli

    parser = cli.landing_parser(
        "python -m nightshift.demo.churn_data",
        "Write deterministic synthetic churn data (customers, activity, cancellations) to a landing zone.",
        DatagenSpec(), SOURCES, BAD_INPUT_CLASSES, ("day the input distribution shifts", "day the churn rules change"),
    )
    parser.add_argument("--customers", type=int, default=DatagenSpec().customers, help="initial number of customers")
    return cli.run(parser, argv, DatagenSpec, write_landing, sizes=["customers"])


if __name__ == "__main__":
    sys.exit(main())
