"""``cmverify compare``: a model against the exact consistency function."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from ._common import _stderr_progress
from ._load import _load_model


def _compare(args: argparse.Namespace) -> int:
    from .._io import check_writable
    from ..compare import compare
    from ..testing import named_path

    start = time.perf_counter()
    progress = _stderr_progress(start)

    try:
        out = check_writable(args.out, "--out") if args.out is not None else None
        model = _load_model(args.model, args.checkpoint)
        path = named_path(args.mixture, args.interpolant)
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    if args.kind == "velocity":
        return _compare_velocity(args, model, path, out, progress)
    if args.kind != "consistency":
        return _compare_flow_map(args, model, path, out, progress)
    progress(f"reference flows for {args.mixture} / {args.interpolant} ({args.n} points per time)")
    try:
        result = compare(
            model,
            path,
            n=args.n,
            seed=args.seed,
            signature=args.signature,
            time_format=args.time_format,
            name=args.model,
            progress=progress,
            atol=args.atol,
            rtol=args.rtol,
            metric=args.metric,
        )
    except ValueError as exc:  # -n 0, a negative or NaN --atol/--rtol, …
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    print(result.to_json() if args.json else result.to_markdown())
    progress(result.verdict())
    if out is not None:
        _tell_written(result.save(out), progress)
    return 0 if result.passed else 1


def _compare_velocity(args: argparse.Namespace, model, path, out, progress) -> int:
    """``--kind velocity``: :func:`~cmverify.compare.compare_velocity`; exit 1 on a model
    failure (there is no threshold on a velocity's error yet)."""
    from ..compare import compare_velocity

    if args.atol is not None or args.rtol is not None:
        print("cmverify compare: --atol/--rtol apply to --kind consistency only", file=sys.stderr)
        return 2
    try:
        result = compare_velocity(
            model,
            path,
            parameterization=args.parameterization,
            time_convention=args.time_convention,
            n=args.n,
            seed=args.seed,
            signature=args.signature,
            time_format=args.time_format or "vector",
            name=args.model,
            progress=progress,
        )
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    print(result.to_json() if args.json else result.to_markdown())
    progress("no model failures" if result.ok else f"{len(result.failures)} model failures")
    if out is not None:
        for written in result.save(out):
            progress(f"wrote {written}")
    return 0 if result.ok else 1


def _compare_flow_map(args: argparse.Namespace, model, path, out, progress) -> int:
    """A flow-map kind: :func:`~cmverify.compare.compare_flow_map` with the kind's default
    pairs; exit 1 on a model failure."""
    from ..compare import compare_flow_map

    if args.atol is not None or args.rtol is not None:
        print("cmverify compare: --atol/--rtol apply to --kind consistency only", file=sys.stderr)
        return 2
    convention = {"interpolant": path.interpolant} if args.kind == "ctm" else {}
    try:
        result = compare_flow_map(
            model,
            path,
            kind=args.kind,
            n=args.n,
            seed=args.seed,
            name=args.model,
            progress=progress,
            **convention,
        )
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    print(result.to_json() if args.json else result.to_markdown())
    progress("no model failures" if result.ok else f"{len(result.failures)} model failures")
    if out is not None:
        from .._io import check_writable

        folder = check_writable(out, "--out")
        (folder / "flow_map_comparison.json").write_text(result.to_json(allow_nan=False))
        (folder / "flow_map_comparison.md").write_text(result.to_markdown())
        written = [folder / "flow_map_comparison.json", folder / "flow_map_comparison.md"]
        try:
            written += result.plot(folder)
        except ImportError:
            progress("figures skipped: matplotlib is not installed (pip install 'cmverify[plots]')")
        for path_written in written:
            progress(f"wrote {path_written}")
    return 0 if result.ok else 1


def _tell_written(paths: list[pathlib.Path], progress) -> None:
    """A progress line per file of ``Comparison.save``, and one when it drew no figure
    because matplotlib (an optional extra) is not installed."""
    for path in paths:
        progress(f"wrote {path}")
    if not any(path.suffix == ".png" for path in paths):
        progress("figures skipped: matplotlib is not installed (pip install 'cmverify[plots]')")
