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
        convention = _kind_options(args)
        out = check_writable(args.out, "--out") if args.out is not None else None
        model = _load_model(args.model, args.checkpoint)
        path = named_path(args.mixture, args.interpolant)
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    if args.kind == "velocity":
        return _compare_velocity(args, model, path, out, progress)
    if args.kind != "consistency":
        return _compare_flow_map(args, model, path, out, progress, convention)
    progress(f"reference flows for {args.mixture} / {args.interpolant} ({args.n} points per time)")
    try:
        result = compare(
            model,
            path,
            n=args.n,
            seed=args.seed,
            signature=args.signature or "t,x",
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
            parameterization=args.parameterization or "velocity",
            time_convention=args.time_convention or "data_at_0",
            n=args.n,
            seed=args.seed,
            signature=args.signature or "t,x",
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
        _tell_written(result.save(out), progress)
    return 0 if result.ok else 1


#: The options of one kind: flag, attribute, the kind it applies to.
_KIND_OPTIONS = (
    ("--parameterization", "parameterization", "velocity"),
    ("--time-convention", "time_convention", "velocity"),
    ("--time-inputs", "time_inputs", "meanflow"),
    ("--dyadic", "dyadic", "shortcut"),
    ("--d-min", "d_min", "shortcut"),
    ("--sigma-data", "sigma_data", "trigflow"),
)
_FLOW_MAP_KEYWORDS = ("time_inputs", "dyadic", "d_min", "sigma_data")


def _kind_options(args: argparse.Namespace) -> dict[str, object]:
    """The flow-map convention keywords given on the command line; ``ValueError`` for an
    option of another kind (it would be silently ignored otherwise)."""
    for flag, key, kind in _KIND_OPTIONS:
        if getattr(args, key) is not None and args.kind != kind:
            raise ValueError(f"{flag} applies to --kind {kind} only (got --kind {args.kind})")
    if args.d_min is not None and not args.dyadic:
        raise ValueError("--d-min applies with --dyadic only (a non-dyadic network takes any d)")
    flow_map = args.kind not in ("consistency", "velocity")
    for flag, key in (("--signature", "signature"), ("--time-format", "time_format")):
        if flow_map and getattr(args, key) is not None:
            raise ValueError(
                f"{flag} applies to --kind consistency|velocity only: a {args.kind} network "
                "has its kind's signature (cmverify.flowmaps.KIND_INFO)"
            )
    return {key: getattr(args, key) for key in _FLOW_MAP_KEYWORDS if getattr(args, key) is not None}


def _compare_flow_map(
    args: argparse.Namespace, model, path, out, progress, convention: dict[str, object]
) -> int:
    """A flow-map kind: :func:`~cmverify.compare.compare_flow_map` with the kind's default
    pairs; exit 1 on a model failure."""
    from ..compare import compare_flow_map

    if args.atol is not None or args.rtol is not None:
        print("cmverify compare: --atol/--rtol apply to --kind consistency only", file=sys.stderr)
        return 2
    if args.kind == "ctm":
        convention = {**convention, "interpolant": path.interpolant}
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
        _tell_written(result.save(out), progress)
    return 0 if result.ok else 1


def _tell_written(paths: list[pathlib.Path], progress) -> None:
    """A progress line per file of ``Comparison.save``, and one when it drew no figure
    because matplotlib (an optional extra) is not installed."""
    for path in paths:
        progress(f"wrote {path}")
    if not any(path.suffix == ".png" for path in paths):
        progress("figures skipped: matplotlib is not installed (pip install 'cmverify[plots]')")
