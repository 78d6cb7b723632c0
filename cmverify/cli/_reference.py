"""``cmverify reference``: one shard of sharded exact reference data."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from ._common import _stderr_progress


def _reference(args: argparse.Namespace) -> int:
    from ..reference import reference_pairs

    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", args.shard)
    if not match:
        print(
            f"cmverify reference: --shard must be I/M, e.g. 0/8, got {args.shard!r}",
            file=sys.stderr,
        )
        return 2
    progress = _stderr_progress(time.perf_counter())
    try:
        result = reference_pairs(
            args.mixture,
            args.n,
            (int(match[1]), int(match[2])),
            interpolant=args.interpolant,
            seed=args.seed,
            out=args.out,
            rtol=args.rtol,
            progress=progress,
        )
    except (ValueError, TypeError) as exc:
        print(f"cmverify reference: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "file": str(result.path),
                "shard": f"{result.shard}/{result.shards}",
                "first_row": result.start,
                "n_rows": result.stop - result.start,
                "max_error_ratio": result.max_error_ratio,
                "unresolved": result.n_unresolved,
                "seconds": round(result.seconds, 3),
            },
            indent=1,
        )
    )
    return 0
