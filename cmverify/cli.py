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
from .results import Check, ClaimResult, _ratio

__all__ = ["main"]


def _format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _stderr_progress(start: float):
    """A progress callback printing ``[elapsed s] line`` to stderr."""

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {line}", file=sys.stderr, flush=True)

    return progress


def _check_columns(c: Check) -> tuple[str, str]:
    if c.value is not None and c.expected is not None:
        return f"{c.value:.4g}", f"{c.expected:.4g} ± {c.tolerance:.2g}"
    return _format_number(c.measured), f"≤ {_format_number(c.tolerance)}"


def _claims_table(results: Sequence[ClaimResult], *, verbose: bool = False) -> str:
    """One row per claim (its worst check), then its checks: each distinct check once
    (the worst case), or every check with ``verbose``."""
    header = (
        f"{'id':<14} {'claim / check':<62} {'case':<34} {'measured':>10} {'expected':>16}  verdict"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        worst = r.worst()
        lines.append(
            f"{r.id:<14} {r.title[:62]:<62} {('worst: ' + worst.case)[:34] if worst else '':<34} "
            f"{_format_number(r.measured):>10} {'ratio ≤ 1':>16}  {'PASS' if r.passed else 'FAIL'}"
        )
        seen: set[str] = set()
        for c in sorted(r.checks, key=lambda c: -_ratio(c)):
            if not verbose and c.name in seen:
                continue
            seen.add(c.name)
            measured, expected = _check_columns(c)
            lines.append(
                f"{'':<14}   {c.name[:60]:<60} {c.case[:34]:<34} {measured:>10} {expected:>16}  "
                f"{'pass' if c.passed else 'FAIL'}"
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
    config = BatteryConfig.quick_config() if args.quick else BatteryConfig()
    only = tuple(args.claim) if args.claim else None
    start = time.perf_counter()
    progress = _stderr_progress(start)

    try:
        results = run_battery(config, progress=progress, only=only)
    except ValueError as exc:
        print(f"cmverify verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        print("\nseed_bimodal (0.8 N(-1, 0.1²) + 0.2 N(2, 0.1²)), linear interpolant:\n")
        print(_path_quantities_table())
        print("\nClaims (measured = worst measured/tolerance over the checks; ≤ 1 passes):\n")
        print(_claims_table(results, verbose=args.verbose))
        failed = [r.id for r in results if not r.passed]
        verdict = f"{len(results) - len(failed)} of {len(results)} claims pass"
        print(
            f"\n{verdict}"
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
            + f"  ({time.perf_counter() - start:.1f} s)"
        )
    return 0 if all(r.passed for r in results) else 1


def _load_model(spec: str, checkpoint: str | None):
    """``FILE.py:NAME`` → the object ``NAME`` of that file (a class is instantiated with no
    arguments); with ``checkpoint``, a torch state dict loaded with ``weights_only=True``."""
    import importlib.util
    import pathlib

    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ValueError(f"model must be given as FILE.py:NAME, got {spec!r}")
    source = pathlib.Path(file)
    if not source.is_file():
        raise ValueError(f"no such file: {file}")
    module_spec = importlib.util.spec_from_file_location(f"_cmverify_user_{source.stem}", source)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, name):
        raise ValueError(f"{file} has no attribute {name!r}")
    model = getattr(module, name)
    if isinstance(model, type):
        model = model()
    if checkpoint is not None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ValueError("--checkpoint needs NAME to be a torch.nn.Module (or its class)")
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # unreadable, unsafe (non-tensor objects) or mismatched
            raise ValueError(f"could not load {checkpoint} as a state dict: {exc}") from None
    return model


def _compare(args: argparse.Namespace) -> int:
    import pathlib

    from .compare import compare
    from .testing import named_path

    start = time.perf_counter()
    progress = _stderr_progress(start)

    try:
        model = _load_model(args.model, args.checkpoint)
        path = named_path(args.mixture, args.interpolant)
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
    progress(f"reference flows for {args.mixture} / {args.interpolant} ({args.n} points per time)")
    result = compare(
        model,
        path,
        n=args.n,
        seed=args.seed,
        signature=args.signature,
        time_format=args.time_format,
        name=args.model,
        progress=progress,
    )
    print(result.to_json() if args.json else result.to_markdown())
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "comparison.json").write_text(result.to_json())
        (out / "comparison.md").write_text(result.to_markdown())
        for figure in result.plot(out):
            progress(f"wrote {figure}")
    return 0 if result.ok else 1


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    import pathlib

    import torch

    from .train import TrainConfig, train

    start = time.perf_counter()
    progress = _stderr_progress(start)

    try:
        config = TrainConfig(
            mixture=args.mixture.replace("-", "_"),
            interpolant=args.interpolant,
            method=args.method,
            steps=args.steps,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"cmverify train: {exc}", file=sys.stderr)
        return 2
    result = train(config, progress=progress)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(result.model.state_dict(), out / "model.pt")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    (out / "metrics.json").write_text(
        json.dumps({**result.metrics, "history": result.history}, indent=2)
    )
    if result.comparison is not None:
        result.comparison.plot(out)
    print(json.dumps(result.metrics, indent=2))
    return 0


def _proofs(args: argparse.Namespace) -> int:
    import pathlib

    from .proofs import derivations

    chosen = [d for d in derivations() if not args.claim or d.claim in args.claim]
    if args.claim and len(chosen) != len(set(args.claim)):
        known = ", ".join(d.claim for d in derivations())
        print(f"cmverify proofs: unknown claim id in {args.claim}; known: {known}", file=sys.stderr)
        return 2
    failed = {d.claim: d.verify() for d in chosen}
    failed = {k: v for k, v in failed.items() if v}
    if failed:
        for claim, steps in failed.items():
            print(
                f"cmverify proofs: {claim}: steps {[i + 1 for i in steps]} do not hold",
                file=sys.stderr,
            )
        return 1
    if args.write:
        out = pathlib.Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for d in chosen:
            (out / f"{d.claim}.md").write_text(d.to_markdown())
        print(f"wrote {len(chosen)} derivations to {out}")
        return 0
    if args.format == "latex":
        from .proofs.core import article_latex, derivation_latex

        text = (
            article_latex(tuple(chosen))
            if args.standalone
            else "\n".join(map(derivation_latex, chosen))
        )
    else:
        text = "\n".join(d.to_markdown() for d in chosen)
    if args.output:
        pathlib.Path(args.output).write_text(text)
    else:
        print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cmverify", description="Ground truth for consistency models."
    )
    parser.add_argument("--version", action="version", version=f"cmverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="measure the theory claims and print the table")
    verify.add_argument("--json", action="store_true", help="print the results as JSON")
    verify.add_argument(
        "--quick", action="store_true", help="one interpolant per mixture, fewer points (< 30 s)"
    )
    verify.add_argument(
        "--claim", action="append", metavar="ID", help="run only this claim (repeatable)"
    )
    verify.add_argument("-v", "--verbose", action="store_true", help="list every check")
    verify.set_defaults(func=_verify)
    comp = sub.add_parser("compare", help="compare a consistency model with the exact flow map")
    comp.add_argument("model", metavar="FILE.py:NAME", help="a callable f(t, x) or torch module")
    comp.add_argument("--mixture", default="eight_gaussians", help="a name from cmverify.mixtures")
    comp.add_argument("--interpolant", default="linear", choices=["linear", "trig"])
    comp.add_argument("--checkpoint", help="torch state dict (loaded with weights_only=True)")
    comp.add_argument("--signature", default="t,x", choices=["t,x", "x,t"])
    comp.add_argument("--time-format", choices=["scalar", "vector", "column"], default=None)
    comp.add_argument("-n", type=int, default=2000, help="points per time (default 2000)")
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    comp.add_argument("--out", help="folder for comparison.json, comparison.md and figures")
    comp.set_defaults(func=_compare)
    tr = sub.add_parser("train", help="train a consistency model (CT or CD) on a named mixture")
    tr.add_argument("--mixture", default="eight_gaussians")
    tr.add_argument("--interpolant", default="linear", choices=["linear", "trig"])
    tr.add_argument("--method", default="cd", choices=["ct", "cd"])
    tr.add_argument(
        "--steps", type=int, default=15000, help="training steps (default 15000, ~70 s)"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--out", default="cm-run", help="folder for model.pt, config.json, metrics.json"
    )
    tr.set_defaults(func=_train)
    pr = sub.add_parser("proofs", help="print or write the SymPy-checked derivations")
    pr.add_argument("--claim", action="append", metavar="ID", help="only this claim (repeatable)")
    pr.add_argument("--format", choices=["markdown", "latex"], default="markdown")
    pr.add_argument(
        "--standalone",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="LaTeX: a standalone article (default) or sections for \\input",
    )
    pr.add_argument("-o", "--output", help="write to this file")
    pr.add_argument("--write", metavar="DIR", help="write one Markdown file per claim into DIR")
    pr.set_defaults(func=_proofs)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
