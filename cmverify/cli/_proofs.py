"""``cmverify proofs``: print or write the SymPy-checked derivations."""

from __future__ import annotations

import argparse
import sys


def _proofs(args: argparse.Namespace) -> int:
    import pathlib

    from ..claims import CATALOGUE
    from ..proofs import DERIVATIONS, derivations

    for claim in args.claim or ():
        if claim not in DERIVATIONS:
            known = ", ".join(DERIVATIONS)
            why = (
                "is measured only (`cmverify verify`), it has no derivation"
                if claim in CATALOGUE
                else "is not a claim id of the catalogue"
            )
            print(f"cmverify proofs: --claim {claim} {why}; derivations: {known}", file=sys.stderr)
            return 2
    chosen = [d for d in derivations() if not args.claim or d.claim in args.claim]
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
        from ..proofs import article_latex, derivation_latex

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
