"""Command line: ``cmverify verify [--json] [--quick]``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__, mixtures
from .battery import BatteryConfig, run_battery
from .interpolant import Interpolant
from .path import MixturePath
from .results import ClaimResult

__all__ = ["main"]


def _format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _claims_table(results: Sequence[ClaimResult]) -> str:
    lines = [
        f"{'id':<15} {'claim / check':<58} {'case':<24} {'measured':>9} {'expected':>10}  verdict"
    ]
    lines.append("-" * len(lines[0]))
    for r in results:
        worst = r.worst()
        case = worst.case if worst else ""
        lines.append(
            f"{r.id:<15} {r.title[:58]:<58} {'worst: ' + case:<24} "
            f"{_format_number(r.measured):>9} {'≤ 1 (ratio)':>10}  {'PASS' if r.passed else 'FAIL'}"
        )
        seen = set()
        for c in sorted(
            r.checks, key=lambda c: -(c.measured / c.tolerance if c.tolerance else c.measured)
        ):
            if c.name in seen:
                continue
            seen.add(c.name)
            lines.append(
                f"{'':<15}   {c.name[:56]:<56} {c.case:<24} {_format_number(c.measured):>9} "
                f"{'≤ ' + _format_number(c.tolerance):>10}  {'pass' if c.passed else 'FAIL'}"
            )
    return "\n".join(lines)


def _path_quantities_table() -> str:
    """The seed's 1-d path: log p_t, D, E[x1|x], score and velocity at a few (t, x)."""
    path = MixturePath(mixtures.seed_bimodal(), Interpolant.linear())
    x = np.array([[-1.0], [0.0], [2.0]])
    header = f"{'t':>5} {'x':>6} {'log p_t':>12} {'D':>12} {'E[x1|x]':>12} {'score':>12} {'v':>12}"
    lines = [header, "-" * len(header)]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        cols = [
            path.log_prob(t, x),
            path.denoiser(t, x)[:, 0],
            path.expected_noise(t, x)[:, 0],
            path.score(t, x)[:, 0],
            path.velocity(t, x)[:, 0],
        ]
        for i in range(x.shape[0]):
            lines.append(f"{t:>5.2f} {x[i, 0]:>6.1f} " + " ".join(f"{c[i]:>12.6g}" for c in cols))
    return "\n".join(lines)


def _verify(args: argparse.Namespace) -> int:
    config = BatteryConfig.quick() if args.quick else BatteryConfig()
    start = time.perf_counter()

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {line}", file=sys.stderr, flush=True)

    results = run_battery(config, progress=None if args.json else progress)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        print("\nseed_bimodal (0.8 N(-1, 0.1²) + 0.2 N(2, 0.1²)), linear interpolant:\n")
        print(_path_quantities_table())
        print("\nClaims (measured = worst measured/tolerance over the checks; ≤ 1 passes):\n")
        print(_claims_table(results))
        failed = [r.id for r in results if not r.passed]
        verdict = f"{len(results) - len(failed)} of {len(results)} claims pass"
        print(
            f"\n{verdict}"
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
            + f"  ({time.perf_counter() - start:.1f} s)"
        )
    return 0 if all(r.passed for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmverify", description="Ground truth for consistency models."
    )
    parser.add_argument("--version", action="version", version=f"cmverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="measure the theory claims and print the table")
    verify.add_argument("--json", action="store_true", help="print the results as JSON")
    verify.add_argument("--quick", action="store_true", help="fewer points and times")
    verify.set_defaults(func=_verify)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
