"""proofs/: every step checked by SymPy; the committed documents are what the package
generates; a changed sign is caught."""

import dataclasses
import pathlib

import pytest
import sympy as sp

from cmverify.cli import main
from cmverify.proofs import derivations

PROOFS = pathlib.Path(__file__).resolve().parents[1] / "proofs"


@pytest.mark.parametrize("derivation", derivations(), ids=lambda d: d.claim)
def test_every_step_is_proven(derivation):
    assert derivation.verify() == []


@pytest.mark.parametrize("derivation", derivations(), ids=lambda d: d.claim)
def test_committed_documents_are_regenerated_identically(derivation):
    assert (PROOFS / f"{derivation.claim}.md").read_text() == derivation.to_markdown()


@pytest.mark.parametrize("derivation", derivations(), ids=lambda d: d.claim)
def test_a_changed_sign_is_caught(derivation):
    """On a copy: flip the sign of one side of every non-trivial step in turn."""
    for i, step in enumerate(derivation.steps):
        if sp.simplify((step.rhs).doit()) == 0:
            broken = dataclasses.replace(step, rhs=step.rhs + 1)
        else:
            broken = dataclasses.replace(step, rhs=-step.rhs)
        steps = (*derivation.steps[:i], broken, *derivation.steps[i + 1 :])
        assert dataclasses.replace(derivation, steps=steps).verify() == [i]


def test_proofs_cli(tmp_path, capsys):
    assert main(["proofs", "--claim", "FLOW-GAUSS"]) == 0
    assert "FLOW-GAUSS.1" in capsys.readouterr().out
    assert main(["proofs", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{d.claim}.md" for d in derivations()
    )
    assert main(["proofs", "--claim", "NOPE"]) == 2


def _tex_tools():
    import os
    import shutil

    missing = [tool for tool in ("pdflatex", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CMVERIFY_REQUIRE_TEX"):
            pytest.fail(f"CMVERIFY_REQUIRE_TEX is set but {missing} are not installed")
        pytest.skip(f"no TeX engine here ({', '.join(missing)} missing); .ci/run installs one")


def test_latex_export_compiles_and_renders(tmp_path):
    """The full export compiles with pdflatex; its first page renders to a non-blank PNG."""
    import subprocess

    import numpy as np

    _tex_tools()
    tex = tmp_path / "proofs.tex"
    assert main(["proofs", "--format", "latex", "-o", str(tex)]) == 0
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "proofs.pdf", "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    matplotlib_image = pytest.importorskip("matplotlib.image")
    pixels = matplotlib_image.imread(next(tmp_path.glob("page*.png")))
    ink = np.mean(pixels[..., :3].mean(axis=-1) < 0.5)
    assert 0.005 < ink < 0.5  # text on a white page, not blank, not black


def test_latex_snippets_are_labelled_by_claim():
    from cmverify.proofs.core import derivation_latex

    for d in derivations():
        snippet = derivation_latex(d)
        assert f"\\label{{claim:{d.claim}}}" in snippet
        assert f"\\label{{eq:{d.claim}.1}}" in snippet
        assert "\\documentclass" not in snippet


def test_latex_export_is_ascii():
    """Every Unicode symbol of the prose is mapped to LaTeX (pdflatex would stop on one)."""
    from cmverify.proofs.core import article_latex

    text = article_latex(derivations())
    assert sorted({c for c in text if ord(c) > 127}) == []
