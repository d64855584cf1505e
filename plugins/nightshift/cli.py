"""``nightshift``: the on-call commands, outside Airflow, on the profile of the environment.

    nightshift rollback --use-case <use case> --to previous --reason "AUC dropped after v7"
    nightshift rollback --use-case <use case> --to 3 --reason "..." --force
    nightshift promotions --use-case <use case>
    nightshift retrain --use-case <use case> [--run-date YYYY-MM-DD]

Each command prints what it did; a refused rollback or promotion exits 2 with the reason (and
is audited). Alias moves hold the same registry lock as the Airflow DAGs: while another move
holds it, a command waits up to ``--wait`` seconds, then exits 3 naming the holder.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="nightshift", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rollback = commands.add_parser("rollback", help="move the champion alias back, audited")
    rollback.add_argument("--use-case", required=True)
    rollback.add_argument("--to", required=True, help="`previous` or a version number")
    rollback.add_argument("--reason", required=True, help="recorded in meta.model_promotions")
    rollback.add_argument("--force", action="store_true", help="allow a version that failed its gate")
    rollback.add_argument("--wait", type=float, default=None,
                          help="seconds to wait for the registry lock (default: registry.LOCK_TIMEOUT_SECONDS)")
    promotions = commands.add_parser("promotions", help="print the promotion audit trail")
    promotions.add_argument("--use-case", required=True)
    retrain = commands.add_parser("retrain", help="train, gate and register a challenger now")
    retrain.add_argument("--use-case", required=True)
    retrain.add_argument("--run-date", type=date.fromisoformat, default=None)
    retrain.add_argument("--wait", type=float, default=None, help="seconds to wait for the registry lock")
    args = parser.parse_args(argv)

    from nightshift.modeling import registry
    from nightshift.usecase import use_case_of
    from nightshift.settings import Settings

    settings = Settings.from_env()
    if args.command == "rollback":
        try:
            moved = registry.rollback(settings, use_case_of(settings, args.use_case), args.to, args.reason,
                                      force=args.force, lock_timeout=args.wait)
        except registry.RollbackRefused as exc:
            print(f"rollback refused: {exc}", file=sys.stderr)
            return 2
        except registry.RegistryBusy as exc:
            print(f"rollback not done: {exc}", file=sys.stderr)
            return 3
        print(f"champion of {moved['model_name']}: version {moved['from_version']} -> {moved['to_version']} "
              f"(audit event {moved['event_id']})")
        return 0
    if args.command == "promotions":
        trail = registry.audit_trail(settings, args.use_case)
        print(trail.to_string(index=False) if len(trail) else f"no promotions recorded for {args.use_case}")
        return 0
    from nightshift.modeling import retrain as retraining

    try:
        result = retraining.retrain(settings, args.use_case, args.run_date or retraining.run_date_of(None), "manual",
                                    lock_timeout=args.wait)
    except registry.ChampionMoved as exc:
        print(f"promotion refused: {exc}", file=sys.stderr)
        return 2
    except registry.RegistryBusy as exc:
        print(f"registration not done: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({k: v for k, v in result.items() if k != "report"}, default=str))
    print(retraining.gate_summary(result["report"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
