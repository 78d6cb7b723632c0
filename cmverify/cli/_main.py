"""The argument parser and the dispatch to the subcommands."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from .. import __version__, _threads
from ..claims import CATALOGUE
from ..flowmaps import KINDS
from ..symbolic import interpolants
from ._common import _positive_int
from ._compare import _compare
from ._proofs import _proofs
from ._reference import _reference
from ._train import _train
from ._verify import _verify


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
        "--quick",
        action="store_true",
        help="one interpolant per mixture, fewer points (about 25 s on 2 cores)",
    )
    verify.add_argument(
        "--claim",
        action="append",
        metavar="ID",
        help="run only this claim (repeatable); IDs: " + ", ".join(CATALOGUE),
    )
    verify.add_argument("-v", "--verbose", action="store_true", help="list every check")
    verify.set_defaults(func=_verify)
    comp = sub.add_parser(
        "compare",
        help="compare a model (consistency, velocity or flow-map network) with the exact truth",
    )
    comp.add_argument(
        "model",
        metavar="FILE.py:NAME",
        help="a callable or torch module: f(t, x) (default), or the signature of --kind",
    )
    comp.add_argument("--mixture", default="eight_gaussians", help="a name from cmverify.mixtures")
    comp.add_argument("--interpolant", default="linear", choices=interpolants.names())
    comp.add_argument("--checkpoint", help="torch state dict (loaded with weights_only=True)")
    comp.add_argument(
        "--signature",
        choices=["t,x", "x,t"],
        metavar="ORDER",
        help="--kind consistency|velocity: the model's argument order, t,x (default) or x,t",
    )
    comp.add_argument("--time-format", choices=["scalar", "vector", "column"], default=None)
    comp.add_argument(
        "-n", type=int, default=2000, help="points per time, or per pair (default 2000)"
    )
    comp.add_argument("--seed", type=int, default=0)
    comp.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    comp.add_argument(
        "--out",
        help="folder for the report (comparison.*, velocity_comparison.* or "
        "flow_map_comparison.* by --kind: JSON, Markdown) and its figures",
    )
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
    comp.add_argument(
        "--kind",
        choices=["consistency", "velocity", *(k for k in KINDS if k != "consistency")],
        default="consistency",
        help="what the model is: a consistency function f(t, x) (default), a velocity-type "
        "model (flow matching, diffusion; see --parameterization), or a flow-map network of "
        "that kind (cmverify.flowmaps.KIND_INFO gives each signature)",
    )
    comp.add_argument(
        "--parameterization",
        choices=["velocity", "x0", "noise", "score"],
        help="--kind velocity: what the model predicts (default velocity)",
    )
    comp.add_argument(
        "--time-convention",
        choices=["data_at_0", "noise_at_0"],
        help="--kind velocity: noise_at_0 for libraries whose time runs noise -> data "
        "(flow_matching, torchcfm; default data_at_0)",
    )
    comp.add_argument(
        "--time-inputs",
        choices=["r,t", "t,t-r"],
        metavar="TIMES",
        help="--kind meanflow: the network takes (z, r, t) (r,t: default) or (z, t, t - r) (t,t-r)",
    )
    comp.add_argument(
        "--dyadic",
        action="store_const",
        const=True,
        help="--kind shortcut: the network knows only d = 2^-k on its grid (then the "
        "default pairs stop at --d-min and the Eulerian residual is not measured)",
    )
    comp.add_argument(
        "--d-min", type=float, help="--kind shortcut with --dyadic: the smallest d (default 1/128)"
    )
    comp.add_argument(
        "--sigma-data",
        type=float,
        help="--kind trigflow: TrigFlow's sigma_d (default 0.5); needs --interpolant trig",
    )
    comp.set_defaults(func=_compare)
    tr = sub.add_parser(
        "train",
        help="train a consistency model (CT, CD) or a flow map (MeanFlow, shortcut) on a "
        "named mixture",
    )
    tr.add_argument(
        "--mixture",
        default="eight_gaussians",
        help="a name from cmverify.mixtures (default %(default)s)",
    )
    tr.add_argument("--interpolant", default="linear", choices=interpolants.names())
    tr.add_argument(
        "--method",
        default="cd",
        choices=["ct", "cd", "meanflow", "shortcut"],
        help="ct, cd: consistency training or distillation of f(t, x); meanflow: MeanFlow's "
        "u(z, r, t); shortcut: shortcut models' s(x, tau, d) (default %(default)s)",
    )
    tr.add_argument(
        "--teacher",
        default="conditional",
        choices=["conditional", "exact"],
        help="meanflow, shortcut: train on the conditional velocity v_c (default), or "
        "distill the exact velocity v of the mixture",
    )
    tr.add_argument(
        "--steps",
        type=int,
        default=15000,
        help="training steps (default 15000: about 70 s for ct and cd, 2 to 3 min for "
        "meanflow and shortcut, on one core)",
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
    ref = sub.add_parser(
        "reference",
        help="write shard I of M of n exact pairs (x1, X_{1->0}(x1)) with their error estimates",
    )
    ref.add_argument("--mixture", required=True, help="a name from cmverify.mixtures")
    ref.add_argument("--interpolant", default="linear", choices=interpolants.names())
    ref.add_argument("--n", type=_positive_int, required=True, help="rows of the whole run")
    ref.add_argument(
        "--shard",
        default="0/1",
        metavar="I/M",
        help="which shard of how many (default 0/1: all rows); I = 0 … M-1, e.g. "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument(
        "--rtol", type=float, default=1e-10, help="per-trajectory target (default 1e-10)"
    )
    ref.add_argument(
        "--out",
        default="reference-pairs",
        help="folder for manifest.json and shard-I-of-M.npz (default %(default)s); "
        "an interrupted shard resumes there",
    )
    ref.set_defaults(func=_reference)
    for command in (verify, comp, tr, pr, ref):
        command.add_argument(
            "--threads",
            type=_positive_int,
            default=_threads.DEFAULT_THREADS,
            metavar="N",
            help=f"BLAS and torch threads (default {_threads.DEFAULT_THREADS}: fastest for "
            "cmverify's small matrices and networks, and safe on shared cores; try the "
            "number of idle cores for d in the hundreds)",
        )
    args = parser.parse_args(_joined_shard(sys.argv[1:] if argv is None else list(argv)))
    try:
        with _threads.limit_threads(args.threads):
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"cmverify {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _joined_shard(argv: list[str]) -> list[str]:
    """``--shard -1/4`` as ``--shard=-1/4``: argparse takes ``-1/4`` for an option and says
    only "expected one argument"; joined, the shard check names what is wrong."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--shard" and i + 1 < len(argv) and re.fullmatch(r"-\d+/-?\d+", argv[i + 1]):
            out.append(f"--shard={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out
