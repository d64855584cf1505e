"""The command line both demo data generators share: where to land, which days, which knobs."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any


def iso_date(text: str) -> date:
    """Parse a ``YYYY-MM-DD`` command-line argument."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write it as YYYY-MM-DD") from error


def bad_rate(text: str) -> tuple[str, float]:
    """Parse a ``CLASS=RATE`` command-line argument."""
    name, sep, rate = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name, float(rate)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not CLASS=RATE, e.g. null_required=0.01") from error


def landing_parser(prog: str, description: str, defaults: Any, sources: Sequence[str], bad_classes: Sequence[str],
                   drift_help: tuple[str, str]) -> argparse.ArgumentParser:
    """The arguments every generator takes; a generator adds its own size arguments."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--landing", help="local directory or s3://bucket/prefix (default: $NIGHTSHIFT_LANDING_URI)")
    parser.add_argument("--start", type=iso_date, default=defaults.start, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=defaults.days, help="number of days to generate")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--covariate-drift-start", type=iso_date, help=drift_help[0])
    parser.add_argument("--concept-drift-start", type=iso_date, help=drift_help[1])
    parser.add_argument("--bad-rate", type=bad_rate, action="append", default=[], metavar="CLASS=RATE",
                        help=f"fraction of bad rows of one class, repeatable; classes: {', '.join(bad_classes)}")
    parser.add_argument("--broken-day", type=iso_date, help="day whose --broken-source file is corrupt")
    parser.add_argument("--broken-source", choices=list(sources), default=defaults.broken_source)
    return parser


def run(parser: argparse.ArgumentParser, argv: list[str] | None, build: Callable[..., Any],
        write_landing: Callable[[Any, str], list[str]], sizes: Sequence[str]) -> int:
    """Parse ``argv``, build the spec from the common knobs and the generator's ``sizes``, land it."""
    args = parser.parse_args(argv)
    landing_uri = args.landing or os.environ.get("NIGHTSHIFT_LANDING_URI")
    if not landing_uri:
        parser.error("no landing zone: pass --landing or set NIGHTSHIFT_LANDING_URI")
    try:
        spec = build(
            **{name: getattr(args, name) for name in sizes},
            start=args.start, days=args.days, seed=args.seed,
            covariate_drift_start=args.covariate_drift_start, concept_drift_start=args.concept_drift_start,
            bad_rates=dict(args.bad_rate), broken_day=args.broken_day, broken_source=args.broken_source,
        )
    except ValueError as error:
        parser.error(str(error))
    uris = write_landing(spec, landing_uri)
    print(f"wrote {len(uris)} files for {spec.start}..{spec.end} to {landing_uri}")
    return 0
