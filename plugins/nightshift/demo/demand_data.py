"""Deterministic synthetic data for the demand demo: stores, products and daily sales.

The demand use case predicts the units a store sells of a product over the next 7 days. The
same ``DemandSpec`` always gives byte-identical CSV files; nothing here reads the clock, the
environment (except ``main``) or global random state, and nothing validates or ingests.

Generative story
----------------
A fixed set of stores (``S001``...) has a region, a format (express, standard, superstore) and
a floor area; a fixed catalogue of products (``P0001``...) has a category, a list price and a
latent popularity. Each store carries about 60 % of the products (its assortment). Every day a
carried pair is delisted with probability 0.4 % and a missing pair is listed with probability
0.6 %, so the set of active pairs moves slowly (about a fifth of it changes in 60 days).

Daily demand of a carried pair is ``store base (from format and area) x product popularity x
pair affinity x weekday factor (weekends higher) x promo lift x price level ** -1.2 x noise``
(daily log-normal noise, sigma 0.25) and units are Poisson of that; a ``sales`` row is written
only when units > 0 (stores open 07:00-22:00; snapshots are taken at 23:00). Promotions
(``discount``: 20 % off and lift 1.8; ``display``: lift 1.4) start on 2 % of the idle pairs a
day and end with probability 1/4 a day, so they last about four days and are visible in
``sales`` while they run. Most of the variance is between pairs and persists, so trailing
sales predict next week's well; promos and weekdays add learnable structure on top.
Measured with 30 stores x 100 products x 120 days, seed 3: LightGBM on trailing 1/7/28-day
units, today's promo, weekday, store and product attributes, trained on days 29-85 and tested
on days 93-113, predicts next-7-day units with MAE 7.3 (R^2 0.88) against 27.4 for a constant
and 7.9 for "same as the last 7 days".

Drift
-----
From ``covariate_drift_start`` the inputs shift but the rules do not: promos start four times
as often and every list price drops by 15 % (demand follows prices through the unchanged
elasticity). From ``concept_drift_start`` the rules change: promo lift nearly vanishes and the
weekday pattern flips (weekends become the quiet days). Each day draws from its own random
stream derived from (seed, day), so days before either date are byte-identical to a run
without drift, and generating more days never changes the earlier ones.

Bad rows and broken files
-------------------------
As in ``churn_data``: ``bad_rates`` maps a class from ``BAD_INPUT_CLASSES`` to the fraction
of rows of every batch given that defect, each class from its own stream. ``null_required``
blanks a required field; ``out_of_range`` writes an impossible number or date (area 0, price
900, units 0 or 20000, a store opened in 2099); ``unknown_category`` writes a value outside
the vocabulary (region "mars", format "kiosk", category "toys", promo "bogof");
``duplicate_key`` appends a copy of a row; ``bad_event_time`` moves the timestamp 10 days
before or 400 days after the batch day; ``uncoercible`` writes text where a number or a
timestamp belongs. On ``broken_day`` the ``broken_source`` file is its first third followed
by random bytes with a NUL and invalid UTF-8, as a transfer cut short would leave.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

# Shared with the churn generator: the same bad-row classes, file names and knob checks.
from nightshift.demo.churn_data import BAD_INPUT_CLASSES, _checked_bad_rates, batch_file_name

__all__ = [
    "BAD_INPUT_CLASSES", "COLUMNS", "SOURCES", "DemandSpec", "batch_file_name", "generate", "main", "write_landing"
]

SOURCES: tuple[str, ...] = ("stores", "products", "sales")

# The contract the suites in expectations/ validate: do not rename, reorder or add columns.
COLUMNS: dict[str, tuple[str, ...]] = {
    "stores": ("store_id", "region", "store_format", "floor_area_sqm", "opened_on", "snapshot_at"),
    "products": ("product_id", "category", "unit_price", "snapshot_at"),
    "sales": ("sale_id", "store_id", "product_id", "sold_at", "units", "unit_price", "promo"),
}

REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
STORE_FORMATS: tuple[str, ...] = ("express", "standard", "superstore")
CATEGORIES: tuple[str, ...] = ("produce", "dairy", "bakery", "beverages", "household")
PROMOS: tuple[str, ...] = ("none", "discount", "display")

_FORMAT_MIX = (0.35, 0.45, 0.20)
_FORMAT_AREA = ((80.0, 400.0), (600.0, 3000.0), (4000.0, 20000.0))
_CATEGORY_MIX = (0.25, 0.20, 0.15, 0.25, 0.15)
_CATEGORY_PRICE = (2.5, 3.0, 3.5, 4.0, 8.0)  # median list price
_ASSORTMENT_SHARE = 0.6
_DELIST = 0.004
_LIST = _DELIST * _ASSORTMENT_SHARE / (1.0 - _ASSORTMENT_SHARE)  # keeps the share at 60 %
_PROMO_END = 0.25
_DISPLAY_SHARE = 0.4
_DISCOUNT = 0.8
_ELASTICITY = 1.2
_NOISE_SIGMA = 0.25
_MAX_UNITS = 10000
_SNAPSHOT_CLOCK = "T23:00:00"
_OPEN_SECONDS = (7 * 3600, 22 * 3600)  # sales happen between 07:00 and 22:00

_STREAM_SIMULATE = 0
_STREAM_WORLD = 1
_STREAM_BAD_ROWS = 2
_STREAM_BROKEN = 3


@dataclass(frozen=True)
class DemandSpec:
    """The knobs of one synthetic retail data set; equal specs give byte-identical files.

    Dates may be given as ``datetime.date`` or ISO strings (``"2026-01-01"``).
    """

    stores: int = 8
    products: int = 40
    start: date = date(2026, 1, 1)
    days: int = 60
    seed: int = 11
    covariate_drift_start: date | None = None
    concept_drift_start: date | None = None
    bad_rates: dict[str, float] = field(default_factory=dict, hash=False)
    broken_day: date | None = None
    broken_source: str = "sales"

    def __post_init__(self) -> None:
        for name in ("start", "covariate_drift_start", "concept_drift_start", "broken_day"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, date.fromisoformat(value))
        object.__setattr__(self, "bad_rates", _checked_bad_rates(self.bad_rates))
        for name in ("stores", "products", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"DemandSpec.{name} is {getattr(self, name)}: it must be at least 1")
        if self.seed < 0:
            raise ValueError(f"DemandSpec.seed is {self.seed}: it must be a non-negative integer")
        if self.broken_source not in SOURCES:
            raise ValueError(f"DemandSpec.broken_source is {self.broken_source!r}: use one of {', '.join(SOURCES)}")
        if self.broken_day is not None and not self.start <= self.broken_day <= self.end:
            raise ValueError(
                f"DemandSpec.broken_day {self.broken_day} is outside the generated days "
                f"{self.start}..{self.end}: pick a day in that range or raise `days`"
            )

    @property
    def end(self) -> date:
        """The last generated day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)


@dataclass(frozen=True)
class _Regime:
    """The parameters of the world on one day; drift switches them."""

    promo_start: float = 0.02
    price_factor: float = 1.0
    lift: tuple[float, float, float] = (1.0, 1.8, 1.4)  # by PROMOS
    weekday: tuple[float, ...] = (0.9, 0.9, 0.9, 0.95, 1.05, 1.35, 1.25)  # Monday..Sunday


def _regime(spec: DemandSpec, day: date) -> _Regime:
    """The regime in force on ``day`` given the drift dates of ``spec``."""
    regime: dict[str, Any] = {}
    if spec.covariate_drift_start is not None and day >= spec.covariate_drift_start:
        regime.update(promo_start=0.08, price_factor=0.85)
    if spec.concept_drift_start is not None and day >= spec.concept_drift_start:
        regime.update(lift=(1.0, 1.1, 1.05), weekday=(1.15, 1.15, 1.15, 1.1, 1.0, 0.7, 0.75))
    return _Regime(**regime)


@dataclass
class _World:
    """Stores, products and the per-pair state (arrays shaped stores x products)."""

    region: np.ndarray
    store_format: np.ndarray
    area: np.ndarray
    opened_on: np.ndarray  # ordinals
    store_base: np.ndarray
    category: np.ndarray
    list_price: np.ndarray
    popularity: np.ndarray
    affinity: np.ndarray
    carried: np.ndarray
    promo: np.ndarray


def _new_world(spec: DemandSpec) -> _World:
    """Sample the stores, the catalogue, the initial assortment and the running promos."""
    rng = np.random.default_rng([spec.seed, spec.start.toordinal(), _STREAM_WORLD])
    s, p = spec.stores, spec.products
    store_format = rng.choice(3, size=s, p=_FORMAT_MIX)
    low, high = np.asarray(_FORMAT_AREA).T
    area = np.round(rng.uniform(low[store_format], high[store_format]), 1)
    category = rng.choice(5, size=p, p=_CATEGORY_MIX)
    price = np.asarray(_CATEGORY_PRICE)[category] * rng.lognormal(0.0, 0.5, size=p)
    idle = rng.random((s, p))
    kind = rng.random((s, p))
    promo_start = _Regime().promo_start
    start_share = promo_start / (promo_start + _PROMO_END)  # the steady-state share on promo
    return _World(
        region=rng.choice(4, size=s),
        store_format=store_format,
        area=area,
        opened_on=spec.start.toordinal() - rng.integers(30, 15 * 365, size=s),
        store_base=2.0 * (area / 1000.0) ** 0.35 * rng.lognormal(0.0, 0.15, size=s),
        category=category,
        list_price=np.round(np.clip(price, 0.3, 400.0), 2),
        popularity=rng.lognormal(0.5, 0.8, size=p),
        affinity=rng.lognormal(0.0, 0.3, size=(s, p)),
        carried=rng.random((s, p)) < _ASSORTMENT_SHARE,
        promo=np.where(idle < start_share, 1 + (kind < _DISPLAY_SHARE), 0),
    )


def _step(world: _World, day: date, regime: _Regime, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Advance assortment and promos to ``day`` and draw its sales; returns per-pair arrays.

    Every day draws the same numbers whatever the regime, so a drift date never moves the
    random streams of the days before it.
    """
    shape = world.carried.shape
    u_list, u_promo, u_kind = rng.random((3, *shape))
    noise = rng.normal(0.0, _NOISE_SIGMA, size=shape)
    world.carried = np.where(world.carried, u_list >= _DELIST, u_list < _LIST)
    starting = np.where(u_promo < regime.promo_start, 1 + (u_kind < _DISPLAY_SHARE), 0)
    world.promo = np.where(world.promo > 0, np.where(u_promo < _PROMO_END, 0, world.promo), starting)

    demand = (
        world.store_base[:, None]
        * world.popularity[None, :]
        * world.affinity
        * regime.weekday[day.weekday()]
        * np.asarray(regime.lift)[world.promo]
        * regime.price_factor**-_ELASTICITY
        * np.exp(noise - _NOISE_SIGMA**2 / 2)
    )
    units = np.minimum(rng.poisson(demand), _MAX_UNITS)
    seconds = rng.integers(*_OPEN_SECONDS, size=shape)
    price = world.list_price[None, :] * regime.price_factor * np.where(world.promo == 1, _DISCOUNT, 1.0)
    return {
        "sold": world.carried & (units > 0),
        "units": units,
        "seconds": seconds,
        "unit_price": np.maximum(np.round(price, 2), 0.01),
        "promo": world.promo,
    }


def _simulate(spec: DemandSpec) -> Iterator[tuple[date, dict[str, dict[str, np.ndarray]]]]:
    """Run the world forward and yield every day's three tables, formatted as strings."""
    world = _new_world(spec)
    store_ids = np.array([f"S{i:03d}" for i in range(1, spec.stores + 1)], dtype=object)
    product_ids = np.array([f"P{i:04d}" for i in range(1, spec.products + 1)], dtype=object)
    for offset in range(spec.days):
        day = spec.start + timedelta(days=offset)
        regime = _regime(spec, day)
        rng = np.random.default_rng([spec.seed, day.toordinal(), _STREAM_SIMULATE])
        pairs = _step(world, day, regime, rng)
        store, product = np.nonzero(pairs["sold"])
        # Point-of-sale exports arrive in time order, not in store order.
        order = np.argsort(pairs["seconds"][store, product], kind="stable")
        store, product = store[order], product[order]
        snapshot = np.full(spec.stores, day.isoformat() + _SNAPSHOT_CLOCK, dtype=object)
        stores = {
            "store_id": store_ids,
            "region": _labels(REGIONS, world.region),
            "store_format": _labels(STORE_FORMATS, world.store_format),
            "floor_area_sqm": _fixed(world.area, 1),
            "opened_on": np.array([date.fromordinal(int(o)).isoformat() for o in world.opened_on], dtype=object),
            "snapshot_at": snapshot,
        }
        products = {
            "product_id": product_ids,
            "category": _labels(CATEGORIES, world.category),
            "unit_price": _fixed(np.maximum(np.round(world.list_price * regime.price_factor, 2), 0.01), 2),
            "snapshot_at": np.full(spec.products, day.isoformat() + _SNAPSHOT_CLOCK, dtype=object),
        }
        sales = {
            "sale_id": day.strftime("%Y%m%d-") + store_ids[store] + "-" + product_ids[product],
            "store_id": store_ids[store],
            "product_id": product_ids[product],
            "sold_at": day.isoformat() + _clock()[pairs["seconds"][store, product]],
            "units": pairs["units"][store, product].astype(str).astype(object),
            "unit_price": _fixed(pairs["unit_price"][store, product], 2),
            "promo": _labels(PROMOS, pairs["promo"][store, product]),
        }
        yield day, {"stores": stores, "products": products, "sales": sales}


# ---------------------------------------------------------------------------------------------
# Formatting: every column is an object array of strings, so bad rows can put anything anywhere.
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _clock() -> np.ndarray:
    """``"THH:MM:SS"`` for every second of a day, indexed by second."""
    return np.array([f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=object)


def _fixed(values: np.ndarray, decimals: int) -> np.ndarray:
    """Numbers as strings with exactly ``decimals`` decimals."""
    return np.char.mod(f"%.{decimals}f", np.asarray(values, dtype=float)).astype(object)


def _labels(vocabulary: tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """Category codes as their names."""
    return np.asarray(vocabulary, dtype=object)[codes]


def _shifted(days: int) -> Callable[[np.ndarray, date], np.ndarray]:
    """A replacement that moves a timestamp ``days`` away from the batch day, keeping the clock."""

    def shift(values: np.ndarray, day: date) -> np.ndarray:
        moved = (day + timedelta(days=days)).isoformat()
        # A value another class already damaged has no clock to keep: use noon.
        return np.array([moved + (v[10:] if len(v) == 19 else "T12:00:00") for v in values], dtype=object)

    return shift


_BAD_VARIANTS: dict[str, dict[str, tuple[tuple[str, Any], ...]]] = {
    "stores": {
        "null_required": (("store_id", ""), ("region", ""), ("floor_area_sqm", ""), ("snapshot_at", "")),
        "out_of_range": (("floor_area_sqm", "0.0"), ("floor_area_sqm", "99999.0"), ("opened_on", "2099-01-01")),
        "unknown_category": (("region", "mars"), ("store_format", "kiosk")),
        "bad_event_time": (("snapshot_at", _shifted(-10)), ("snapshot_at", _shifted(400))),
        "uncoercible": (("floor_area_sqm", "abc"), ("opened_on", "not-a-date"), ("snapshot_at", "not-a-date")),
    },
    "products": {
        "null_required": (("product_id", ""), ("category", ""), ("unit_price", ""), ("snapshot_at", "")),
        "out_of_range": (("unit_price", "0.00"), ("unit_price", "900.00")),
        "unknown_category": (("category", "toys"),),
        "bad_event_time": (("snapshot_at", _shifted(-10)), ("snapshot_at", _shifted(400))),
        "uncoercible": (("unit_price", "abc"), ("snapshot_at", "not-a-date")),
    },
    "sales": {
        "null_required": (("sale_id", ""), ("store_id", ""), ("product_id", ""), ("sold_at", ""), ("units", "")),
        "out_of_range": (("units", "0"), ("units", "-2"), ("units", "20000"), ("unit_price", "0.00")),
        "unknown_category": (("promo", "bogof"),),
        "bad_event_time": (("sold_at", _shifted(-10)), ("sold_at", _shifted(400))),
        "uncoercible": (("units", "abc"), ("units", "2.5"), ("unit_price", "n/a"), ("sold_at", "not-a-date")),
    },
}

# Blanks last so a blanked field stays blank; duplicates first so copies are of clean rows.
_BAD_ORDER = ("duplicate_key", "bad_event_time", "out_of_range", "unknown_category", "uncoercible", "null_required")


def _add_bad_rows(
    columns: dict[str, np.ndarray], source: str, day: date, seed: int, bad_rates: dict[str, float]
) -> dict[str, np.ndarray]:
    """Apply each requested bad-row class to its own random fraction of the rows."""
    for name in _BAD_ORDER:
        rate = bad_rates.get(name, 0.0)
        if rate <= 0.0:
            continue
        rng = np.random.default_rng(
            [seed, day.toordinal(), _STREAM_BAD_ROWS, SOURCES.index(source), BAD_INPUT_CLASSES.index(name)]
        )
        # One uniform per row picks both whether and how a row is damaged.
        uniform = rng.random(len(columns[COLUMNS[source][0]]))
        picked = np.flatnonzero(uniform < rate)
        if name == "duplicate_key":
            columns = {col: np.concatenate([values, values[picked]]) for col, values in columns.items()}
            continue
        variants = _BAD_VARIANTS[source][name]
        choice = np.minimum((uniform[picked] / rate * len(variants)).astype(np.int64), len(variants) - 1)
        for number, (column, replacement) in enumerate(variants):
            rows = picked[choice == number]
            if len(rows):
                values = columns[column].copy()
                values[rows] = replacement(values[rows], day) if callable(replacement) else replacement
                columns[column] = values
    return columns


def _to_csv(columns: dict[str, np.ndarray], source: str) -> bytes:
    """UTF-8 CSV with the contract's header; no value contains a comma, a quote or a newline."""
    names = COLUMNS[source]
    lines = columns[names[0]].astype(object)
    for name in names[1:]:
        lines = lines + "," + columns[name]
    return "".join(line + "\n" for line in [",".join(names), *lines]).encode("utf-8")


def _broken(data: bytes, day: date, seed: int, source: str) -> bytes:
    """The file a transfer cut short leaves: a valid head, then binary garbage."""
    rng = np.random.default_rng([seed, day.toordinal(), _STREAM_BROKEN, SOURCES.index(source)])
    garbage = rng.integers(0, 256, size=512, dtype=np.uint8).tobytes()
    # 0xFF never occurs in UTF-8 and NUL trips C-based readers: the file fails either way.
    return data[: max(len(data) // 3, 1)] + b"\xff\x00" + garbage


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def generate(spec: DemandSpec) -> Iterator[tuple[date, str, bytes]]:
    """Yield (day, source, csv_bytes) for every day and source, in day order.

    Args:
        spec: the knobs of the data set.

    Returns:
        An iterator over one CSV per (day, source), sources in ``SOURCES`` order.
    """
    for day, tables in _simulate(spec):
        for source in SOURCES:
            columns = tables[source]
            if spec.bad_rates:
                columns = _add_bad_rows(columns, source, day, spec.seed, spec.bad_rates)
            data = _to_csv(columns, source)
            if day == spec.broken_day and source == spec.broken_source:
                data = _broken(data, day, spec.seed, source)
            yield day, source, data


def write_landing(spec: DemandSpec, landing_uri: str) -> list[str]:
    """Write every batch to the landing zone as ``<source>/<day>/<source>_<day>.csv``.

    Args:
        spec: the knobs of the data set.
        landing_uri: a local directory or ``s3://bucket/prefix``.

    Returns:
        The URI of every file written, in generation order.
    """
    from nightshift.landing import Landing

    landing = Landing(landing_uri)
    return [
        landing.write_bytes(source, day, batch_file_name(source, day), data) for day, source, data in generate(spec)
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: generate a demand data set and write it to a landing zone."""
    from nightshift.demo import cli

    defaults = DemandSpec()
    parser = cli.landing_parser(
        "python -m nightshift.demo.demand_data",
        "Write deterministic synthetic retail demand data (stores, products, sales) to a landing zone.",
        defaults, SOURCES, BAD_INPUT_CLASSES, ("day promos and prices shift", "day the promo and weekday effects change"),
    )
    parser.add_argument("--stores", type=int, default=defaults.stores, help="number of stores")
    parser.add_argument("--products", type=int, default=defaults.products, help="number of products in the catalogue")
    return cli.run(parser, argv, DemandSpec, write_landing, sizes=["stores", "products"])


if __name__ == "__main__":
    sys.exit(main())
