"""``cmverify verify``: measure the claim catalogue and print the table."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..claims import CATALOGUE, BatteryConfig, run_battery
from ._common import _stderr_progress
from ._tables import (
    _claims_markdown,
    _claims_table,
    _path_quantities_markdown,
    _path_quantities_table,
)


def _verify(args: argparse.Namespace) -> int:
    config = BatteryConfig.quick_config() if args.quick else BatteryConfig()
    only = (
        tuple(c.strip().upper() for c in args.claim) if args.claim else None
    )  # ids are upper case
    start = time.perf_counter()
    progress = _stderr_progress(start)

    unknown = [claim_id for claim_id in only or () if claim_id not in CATALOGUE]
    if unknown:  # a usage error; an error raised while measuring is not one
        print(
            f"cmverify verify: unknown claim id(s) {unknown}; known: {', '.join(CATALOGUE)}",
            file=sys.stderr,
        )
        return 2
    results = run_battery(config, progress=progress, only=only)
    failed = [r.id for r in results if not r.passed]
    verdict = (
        f"{len(results) - len(failed)} of {len(results)} claims pass"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + f"  ({time.perf_counter() - start:.1f} s)"
    )
    seed = "seed_bimodal (0.8 N(-1, 0.1²) + 0.2 N(2, 0.1²)), linear interpolant"
    legend = "measured = worst measured/tolerance over the checks; ≤ 1 passes"
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    elif args.markdown:
        print(f"### {seed}\n\n{_path_quantities_markdown()}\n")
        print(f"### Claims\n\n{legend}.\n\n{_claims_markdown(results, verbose=args.verbose)}")
        print(f"\n**{verdict}**")
    else:
        print(f"\n{seed}:\n\n{_path_quantities_table()}")
        print(f"\nClaims ({legend}):\n\n{_claims_table(results, verbose=args.verbose)}")
        print(f"\n{verdict}")
    return 0 if not failed else 1
