"""Command line: ``cmverify verify | compare | train | proofs`` (``cmverify -h``).

Every subcommand takes ``--threads N`` (default 1, see :mod:`cmverify._threads`); usage
errors are one line on stderr with exit status 2, Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
import time
import unicodedata
from collections.abc import Sequence

import numpy as np

from . import __version__, _threads, interpolants, mixtures
from .battery import BatteryConfig, run_battery
from .interpolant import Interpolant
from .path import MixturePath
from .results import Check, ClaimResult, _ratio

__all__ = ["main"]


def _format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}"


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _stderr_progress(start: float):
    """A progress callback printing ``[elapsed s] line`` to stderr."""

    def progress(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {line}", file=sys.stderr, flush=True)

    return progress


def _check_columns(c: Check) -> tuple[str, str]:
    if c.value is not None and c.expected is not None:
        return f"{c.value:.4g}", f"{c.expected:.4g} ± {c.tolerance:.2g}"
    return _format_number(c.measured), f"≤ {_format_number(c.tolerance)}"


def _width(text: str) -> int:
    """Terminal columns of ``text``: combining marks (the dot of ``α̇``) take none."""
    return sum(not unicodedata.combining(ch) for ch in text)


def _pad(text: str, width: int, align: str) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if align == ">" else text + fill


# The text table's columns (width, alignment); with their separators they add up to
# TABLE_WIDTH, so the table fits a 100-column terminal. Text wider than its column is
# wrapped onto continuation lines at spaces (words longer than a column are split). A
# claim's row has no case (its first check is the worst): its statement spans both.
TABLE_WIDTH = 100
_COLUMNS = {
    "text": (45, "<"),  # a claim's id and statement, or an indented check name
    "case": (23, "<"),
    "measured": (9, ">"),
    "expected": (11, ">"),
    "verdict": (7, "<"),
}
_SEPARATORS = {"case": " ", "measured": " ", "expected": " ", "verdict": "  "}


def _wrap(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    lines = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )
    return lines or [first.rstrip()]


def _table_row(cells: dict[str, str], first: str = "", rest: str = "") -> list[str]:
    """One logical row as one or more physical lines of at most ``TABLE_WIDTH`` columns;
    the text column's first line starts with ``first`` and its continuations with
    ``rest``. Without a ``"case"`` cell, the text spans the case column too."""
    columns = dict(_COLUMNS)
    if "case" not in cells:
        del columns["case"]
        columns["text"] = (_COLUMNS["text"][0] + 1 + _COLUMNS["case"][0], "<")
    wrapped = {
        name: _wrap(cells[name], width, first, rest)
        if name == "text"
        else _wrap(cells[name], width)
        for name, (width, _) in columns.items()
    }
    lines = []
    for i in range(max(map(len, wrapped.values()))):
        line = ""
        for name, (width, align) in columns.items():
            cell = wrapped[name][i] if i < len(wrapped[name]) else ""
            line += _SEPARATORS.get(name, "") + _pad(cell, width, align)
        lines.append(line.rstrip())
    return lines


def _claim_rows(r: ClaimResult, verbose: bool):
    """``(claim cells, [check cells])``: the claim's row, then each distinct check once
    (its worst case), or every check with ``verbose``, worst first."""
    claim = {
        "id": r.id,
        "text": r.title,
        "measured": _format_number(r.measured),
        "expected": "ratio ≤ 1",
        "verdict": "PASS" if r.passed else "FAIL",
    }
    checks, seen = [], set()
    for c in sorted(r.checks, key=lambda c: -_ratio(c)):
        if not verbose and c.name in seen:
            continue
        seen.add(c.name)
        measured, expected = _check_columns(c)
        checks.append(
            {
                "text": c.name,
                "case": c.case,
                "measured": measured,
                "expected": expected,
                "verdict": "pass" if c.passed else "FAIL",
            }
        )
    return claim, checks


def _claims_table(results: Sequence[ClaimResult], *, verbose: bool = False) -> str:
    """The claims as a text table of at most ``TABLE_WIDTH`` columns: per claim a row
    ``ID  statement`` with its worst ratio measured/tolerance and verdict, then its checks
    (indented; the first is the worst), long text wrapped within its column."""
    header = _table_row(
        {
            "text": "id / claim / check",
            "case": "case",
            "measured": "measured",
            "expected": "expected",
            "verdict": "verdict",
        }
    )[0]
    lines = [header, "-" * TABLE_WIDTH]
    id_width = max([13, *(len(r.id) for r in results)]) + 2  # the catalogue's ids: ≤ 13
    for r in results:
        claim, checks = _claim_rows(r, verbose)
        lines += _table_row(claim, f"{r.id:<{id_width}}", " " * id_width)
        for cells in checks:
            lines += _table_row(cells, "  ", "    ")
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    """``text`` as one GitHub-Markdown table cell: emphasis, code and pipe characters
    escaped, so the claim's mathematics reads as written."""
    for ch in "\\`*_|<":
        text = text.replace(ch, "\\" + ch)
    return text


def _claims_markdown(results: Sequence[ClaimResult], *, verbose: bool = False) -> str:
    """The claims as a GitHub-Markdown table: full statements, one row per claim (bold
    id) followed by its checks."""
    lines = [
        "| id | claim / check | case | measured | expected | verdict |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in results:
        claim, checks = _claim_rows(r, verbose)
        for cells in [{**claim, "id": f"**{r.id}**"}, *checks]:
            row = [cells.get("id", "")] + [
                _markdown_cell(cells.get(k, "")) for k in ("text", "case", "measured", "expected")
            ]
            row.append(f"**{cells['verdict']}**" if "id" in cells else cells["verdict"])
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


_PATH_HEADER = ("t", "x", "log p_t", "D", "E[x1|x]", "score", "v")


def _path_quantities() -> list[list[str]]:
    """The seed's 1-d path: log p_t, D, E[x1|x], score and velocity at a few (t, x)."""
    path = MixturePath(mixtures.seed_bimodal(), Interpolant.linear())
    x = np.array([[-1.0], [0.0], [2.0]])
    rows = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        cols = [
            path.log_prob(t, x),
            path.denoiser(t, x)[:, 0],
            path.expected_noise(t, x)[:, 0],
            path.score(t, x)[:, 0],
            path.velocity(t, x)[:, 0],
        ]
        for i in range(x.shape[0]):
            rows.append([f"{t:.2f}", f"{x[i, 0]:.1f}"] + [f"{c[i]:.6g}" for c in cols])
    return rows


def _path_quantities_table() -> str:
    widths = (5, 6, 12, 12, 12, 12, 12)
    header = " ".join(f"{h:>{w}}" for h, w in zip(_PATH_HEADER, widths, strict=True))
    lines = [header, "-" * len(header)]
    for row in _path_quantities():
        lines.append(" ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _path_quantities_markdown() -> str:
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in _PATH_HEADER) + " |",
        "|" + "---:|" * len(_PATH_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _path_quantities()]
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


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (user code's errors, for a one-line report)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _load_model(spec: str, checkpoint: str | None):
    """``FILE.py:NAME`` → the object ``NAME`` of that file (a class is instantiated with no
    arguments); with ``checkpoint``, a torch state dict loaded with ``weights_only=True``.

    Every way a user's file can fail — not found, not Python, a SyntaxError or an
    exception when imported, no such name, a class that needs arguments, an object that
    is not callable, a checkpoint that does not fit — raises a one-line ``ValueError``.
    """
    import importlib.util
    import pathlib

    file, sep, name = spec.rpartition(":")
    if not sep or not file or not name:
        raise ValueError(f"model must be given as FILE.py:NAME, got {spec!r}")
    source = pathlib.Path(file)
    if not source.is_file():
        raise ValueError(f"no such file: {file}")
    module_name = f"_cmverify_user_{source.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, source)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"{file} is not a Python file (FILE.py:NAME)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # as an import would (dataclasses, pickling need it)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's code: anything can happen
        del sys.modules[module_name]
        raise ValueError(f"could not import {file}: {_one_line(exc)}") from None
    finally:
        _threads.refresh_limits()  # the file may have imported torch or a BLAS
    if not hasattr(module, name):
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise ValueError(
            f"{file} has no attribute {name!r}"
            + (f"; it defines {', '.join(defined[:12])}" if defined else "")
        )
    model = getattr(module, name)
    if isinstance(model, type):
        try:
            model = model()
        except Exception as exc:
            raise ValueError(
                f"{name} in {file} is a class that could not be created with no "
                f"arguments ({_one_line(exc)}); give an instance or a function instead"
            ) from None
    if not callable(model):
        raise ValueError(
            f"{name} in {file} is not callable (type {type(model).__name__}); it must be a "
            "function f(t, x), a torch module or a class"
        )
    if checkpoint is not None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ValueError("--checkpoint needs NAME to be a torch.nn.Module (or its class)")
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # unreadable, unsafe (non-tensor objects) or mismatched
            detail = " ".join(str(exc).split())  # torch's messages span lines
            raise ValueError(f"could not load {checkpoint} as a state dict: {detail}") from None
    return model


def _compare(args: argparse.Namespace) -> int:
    from ._io import check_writable
    from .compare import compare
    from .testing import named_path

    start = time.perf_counter()
    progress = _stderr_progress(start)

    try:
        out = check_writable(args.out, "--out") if args.out is not None else None
        model = _load_model(args.model, args.checkpoint)
        path = named_path(args.mixture, args.interpolant)
    except ValueError as exc:
        print(f"cmverify compare: {exc}", file=sys.stderr)
        return 2
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
        (out / "comparison.json").write_text(result.to_json())
        (out / "comparison.md").write_text(result.to_markdown())
        for figure in result.plot(out):
            progress(f"wrote {figure}")
    return 0 if result.passed else 1


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
        from .train import TrainConfig, TrainingInterrupted, train
        from .train.checkpoint import check_writable
    except ImportError as exc:
        return usage_error(f"needs torch ({exc}); install it with pip install 'cmverify[torch]'")
    try:
        config = TrainConfig(
            mixture=args.mixture.replace("-", "_"),
            interpolant=args.interpolant,
            method=args.method,
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
    if result.comparison is not None:
        try:
            for figure in result.comparison.plot(out):
                progress(f"wrote {figure}")
        except ImportError as exc:  # matplotlib is an optional extra
            progress(f"figures skipped ({exc}); pip install 'cmverify[plots]' to draw them")
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
    output = verify.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the results as JSON")
    output.add_argument(
        "--markdown",
        action="store_true",
        help="print the tables as GitHub Markdown (full claim text) instead of text "
        "wrapped to 100 columns",
    )
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
    comp.add_argument("--interpolant", default="linear", choices=interpolants.names())
    comp.add_argument("--checkpoint", help="torch state dict (loaded with weights_only=True)")
    comp.add_argument("--signature", default="t,x", choices=["t,x", "x,t"])
    comp.add_argument("--time-format", choices=["scalar", "vector", "column"], default=None)
    comp.add_argument("-n", type=int, default=2000, help="points per time (default 2000)")
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    comp.add_argument("--out", help="folder for comparison.json, comparison.md and figures")
    comp.add_argument(
        "--atol",
        type=float,
        help="fail (exit 1) unless the error statistic (--metric) is <= ATOL + RTOL * data "
        "scale at every t (default: no threshold; exit 1 only for failed model calls)",
    )
    comp.add_argument(
        "--rtol",
        type=float,
        help="tolerance relative to the data scale sqrt(tr Cov x0) (default 0 when --atol is given)",
    )
    comp.add_argument(
        "--metric",
        choices=["rmse", "max"],
        default="rmse",
        help="statistic of |f - f*| bounded per t: rmse (default, stable in n) or max",
    )
    comp.set_defaults(func=_compare)
    tr = sub.add_parser("train", help="train a consistency model (CT or CD) on a named mixture")
    tr.add_argument(
        "--mixture",
        default="eight_gaussians",
        help="a name from cmverify.mixtures (default %(default)s)",
    )
    tr.add_argument("--interpolant", default="linear", choices=interpolants.names())
    tr.add_argument("--method", default="cd", choices=["ct", "cd"])
    tr.add_argument(
        "--steps", type=int, default=15000, help="training steps (default 15000, ~70 s)"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument(
        "--out",
        default="cm-run",
        help="folder for model.pt, config.json, metrics.json and figures (default cm-run); "
        "checked writable before training; a checkpoint is written there at every "
        "evaluation, so Ctrl-C (exit status 130) keeps the last one",
    )
    tr.add_argument(
        "--eval-every",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="evaluate against the exact flow map and write a checkpoint every N steps "
        "(default 1000)",
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
    for command in (verify, comp, tr, pr):
        command.add_argument(
            "--threads",
            type=_positive_int,
            default=_threads.DEFAULT_THREADS,
            metavar="N",
            help=f"BLAS and torch threads (default {_threads.DEFAULT_THREADS}: fastest for "
            "cmverify's small matrices and networks, and safe on shared cores; try the "
            "number of idle cores for d in the hundreds)",
        )
    args = parser.parse_args(argv)
    try:
        with _threads.limit_threads(args.threads):
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"cmverify {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
