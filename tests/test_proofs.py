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
