"""``cmverify train``: the compact trainer (CT, CD, MeanFlow, shortcut)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..exact import mixtures
from ._common import _stderr_progress
from ._compare import _tell_written


def _train(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    progress = _stderr_progress(start)

    def usage_error(message: str) -> int:
        print(f"cmverify train: {message}", file=sys.stderr)
        return 2

    try:
        mixtures.by_name(args.mixture)  # before torch's import: a typo is told at once
    except ValueError as exc:
        return usage_error(str(exc))
    try:
        from .._io import check_writable
        from ..train import TrainConfig, TrainingInterrupted, train
    except ImportError as exc:
        return usage_error(f"needs torch ({exc}); install it with pip install 'cmverify[torch]'")
    try:
        config = TrainConfig(
            mixture=args.mixture.replace("-", "_"),
            interpolant=args.interpolant,
            method=args.method,
            teacher=args.teacher,
            steps=args.steps,
            seed=args.seed,
            eval_every=args.eval_every,
        )
        out = check_writable(args.out, "--out")  # before the work, not after it
    except ValueError as exc:
        return usage_error(str(exc))
    try:
        result = train(config, progress=progress, threads=args.threads, checkpoint_dir=out)
    except TrainingInterrupted as stop:
        print(f"cmverify train: {stop}", file=sys.stderr)
        return 130
    except FloatingPointError as diverged:
        print(f"cmverify train: {diverged}", file=sys.stderr)
        return 1
    if result.report_files:  # the final evaluation's report, saved by the trainer
        _tell_written(result.report_files, progress)
    print(json.dumps(result.metrics, indent=2))
    return 0
