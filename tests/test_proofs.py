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
    """Flip the sign of one side of every proven step in turn: the check fails on that step
    (definitions assert nothing and are not checked). The other steps are unchanged and
    proven by ``test_every_step_is_proven``; re-verifying them per broken step made this
    test quadratic in the number of steps (16 s for CONVENTIONS)."""
    for i in derivation.proven():
        step = derivation.steps[i]
        if sp.simplify((step.rhs).doit()) == 0:
            broken = dataclasses.replace(step, rhs=step.rhs + 1)
        else:
            broken = dataclasses.replace(step, rhs=-step.rhs)
        assert not broken.holds(), f"{derivation.claim}.{i + 1}"


@pytest.mark.parametrize("derivation", derivations(), ids=lambda d: d.claim)
def test_no_proven_step_restates_its_lhs(derivation):
    """A step whose two sides are one expression before any evaluation proves nothing
    (FLOW-VELOCITY.1 was ``α D + σ E = α D + σ E``): such a step must be a definition."""
    for i in derivation.proven():
        step = derivation.steps[i]
        assert step.lhs != step.rhs, f"{derivation.claim}.{i + 1} restates {step.lhs}"


def test_definitions_name_an_expression_and_are_not_counted_as_proven():
    from cmverify.proofs import Derivation, Step

    a, b, x = sp.symbols("a b x", real=True)
    named = Step(x, a + b, "Let $x = a + b$.", definition=True)
    assert named.latex() == "x := a + b"
    with pytest.raises(ValueError, match="definition"):
        named.holds()
    d = Derivation(
        claim="FLOW-VELOCITY",
        assumptions=(),
        statement="s",
        steps=(named, Step(x + x, 2 * x, "")),
        measured_by="m",
    )
    assert d.proven() == [1] and d.verify() == []
    assert "x := a + b" in d.to_markdown() and "except the definitions" in d.to_markdown()
    for lhs, rhs in ((a + b, x), (x, x + 1), (sp.Function("f")(a), a)):
        with pytest.raises(ValueError, match="a definition's lhs must be a symbol"):
            Step(lhs, rhs, "", definition=True)
    flow = next(d for d in derivations() if d.claim == "FLOW-VELOCITY")
    assert [i for i, step in enumerate(flow.steps) if step.definition] == [0]


def test_param_boundary_checks_the_expressions_the_trainer_evaluates():
    """The link between the proof and the shipped code: PARAM-BOUNDARY's steps are built
    on the very SymPy objects from which the trainer's numerics are generated, and the
    generated function agrees with the closed forms typed here on a grid."""
    torch = pytest.importorskip("torch")
    import numpy as np

    import cmverify as cmv
    from cmverify.symbolic import consistency_scalings, consistency_scalings_numeric
    from cmverify.train import _model as model_module

    c_skip, c_out = consistency_scalings()
    proof = next(d for d in derivations() if d.claim == "PARAM-BOUNDARY")
    assert proof.steps[0].lhs is c_skip and proof.steps[1].lhs is c_out
    assert proof.steps[2].lhs.expr is c_skip and proof.steps[3].lhs.expr is c_out
    generated = consistency_scalings_numeric()
    assert model_module._SCALINGS is generated and generated.expressions is consistency_scalings()

    t = np.linspace(0.0, 1.0, 101)
    closed_forms = {
        "linear": (1 - t, t),
        "trig": (np.cos(np.pi * t / 2), np.sin(np.pi * t / 2)),
    }
    for name, (a, s) in closed_forms.items():
        interp = getattr(cmv.Interpolant, name)()
        for sd in (0.1, 1.4, 30.0):
            c = a**2 * sd**2 + s**2
            got_skip, got_out = model_module.boundary_scalings(interp, t, sd)
            np.testing.assert_allclose(got_skip, a * sd**2 / c, rtol=1e-14, atol=1e-15)
            np.testing.assert_allclose(got_out, s * sd / np.sqrt(c), rtol=1e-14, atol=1e-15)
            assert (got_skip[0], got_out[0]) == (1.0, 0.0)
        consistency_model = model_module.ConsistencyModel(interp, 2, sigma_data=1.4)
        tensors = consistency_model.scalings(torch.as_tensor(t))
        expected = model_module.boundary_scalings(interp, t, 1.4)
        for tensor, array in zip(tensors, expected, strict=True):
            assert torch.equal(tensor[:, 0], torch.as_tensor(array))


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
    """The full export compiles with pdflatex without an overfull line; every page renders
    to a non-blank PNG."""
    import re
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
    # Nothing sticks out into the margin: every equation fits or is broken across lines.
    log = (tmp_path / "proofs.log").read_text(errors="replace")
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert max(overfull, default=0.0) < 1.0, overfull
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "proofs.pdf", "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    matplotlib_image = pytest.importorskip("matplotlib.image")
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 3
    for page in pages:
        pixels = matplotlib_image.imread(page)
        ink = np.mean(pixels[..., :3].mean(axis=-1) < 0.5)
        assert 0.002 < ink < 0.5, page.name  # text on a white page, not blank, not black


def test_latex_snippets_are_labelled_by_claim():
    from cmverify.proofs import derivation_latex

    for d in derivations():
        snippet = derivation_latex(d)
        assert f"\\label{{claim:{d.claim}}}" in snippet
        assert f"\\label{{eq:{d.claim}.1}}" in snippet
        assert "\\documentclass" not in snippet


def test_latex_export_is_ascii():
    """Every Unicode symbol of the prose is mapped to LaTeX (pdflatex would stop on one)."""
    from cmverify.proofs import article_latex

    text = article_latex(derivations())
    assert sorted({c for c in text if ord(c) > 127}) == []


# --- notation of the documents: primes, real math in the prose, nothing scaled ---------


def test_derivatives_of_undefined_functions_print_with_primes():
    from cmverify.proofs._latex import expr_latex

    t, s, y, xi = sp.symbols("t s y xi", real=True)
    alpha, F = sp.Function("alpha"), sp.Function("F")
    assert expr_latex(sp.Derivative(alpha(t), t)) == r"\alpha'(t)"
    # SymPy keeps a derivative at a point as Subs(Derivative(α(ξ), ξ, 2), ξ, s)
    at_s = sp.diff(alpha(t), t, 2).subs(t, s - 1)
    assert isinstance(at_s, sp.Subs)
    assert expr_latex(at_s) == r"\alpha''(s - 1)"
    assert expr_latex(sp.Subs(sp.Derivative(F(xi), xi, 2), xi, y)) == "F''(y)"
    assert expr_latex(sp.Derivative(F(y), (y, 4))) == "F^{(4)}(y)"
    assert expr_latex(sp.Derivative(alpha(t), t) ** 2) == r"\alpha'(t)^{2}"
    assert expr_latex(alpha(t) ** 2) == r"\alpha(t)^{2}"
    assert expr_latex(alpha(t - sp.Symbol("Delta"))) == r"\alpha(t - \Delta)"


def test_no_subs_or_dummy_variables_in_the_documents():
    """Derivatives at a point printed as Subs(d²/dξ1² α(ξ1), ξ1=s) or its LaTeX twin
    (a bar with ξ_1 = s) were the old output."""
    from cmverify.proofs import article_latex

    documents = [article_latex(derivations()), *(d.to_markdown() for d in derivations())]
    for text in documents:
        assert "Subs(" not in text and "Derivative(" not in text
        assert r"\xi" not in text
        assert r"\frac{d}{d \xi" not in text and r"\frac{d^{2}}{d" not in text
    latex = documents[0]
    for primed in (r"\alpha'(t)", r"\alpha''(s)", r"\sigma''(s)", "F'(y)", "F''(y)"):
        assert primed in latex


def test_latex_never_scales_an_equation():
    """A long equation is broken across lines (split), never shrunk."""
    import re

    from cmverify.proofs import article_latex

    latex = article_latex(derivations())
    assert not re.search(r"\\(resizebox|scalebox|tiny|scriptsize|footnotesize|small)\b", latex)
    assert "\\begin{split}" in latex  # the long ones are broken instead


def _prose_outside_math(latex: str) -> str:
    """The LaTeX export with math, code, labels and environments removed: what is left is
    typeset as text."""
    import re

    body = latex.split("\\maketitle", 1)[1]
    body = re.sub(r"\\begin\{equation\}.*?\\end\{equation\}", " ", body, flags=re.S)
    body = re.sub(r"\$[^$]*\$", " ", body)
    body = re.sub(r"\\texttt\{(?:[^{}]|\{\})*\}", " ", body)
    body = re.sub(r"\\(label|section|paragraph)\{", " ", body)
    return body


def test_latex_prose_has_real_math_not_ascii_math():
    """Old export: x\\_\\{s$\\to$s-$\\Delta$\\} typeset as text; now $x_{s\\to s-\\Delta}$."""
    from cmverify.proofs import article_latex

    latex = article_latex(derivations())
    assert r"$x_{s-\Delta} = y - \delta\Delta + \tfrac{1}{2} \gamma \Delta^{2}" in latex
    assert r"$T = F(X_{s\to s-\Delta}(y))$" in latex
    prose = _prose_outside_math(latex)
    for raw in ("\\_", "_{", "^{", "\\{", "\\^", "\\textbackslash", "sqrt("):
        assert raw not in prose, (raw, prose[max(prose.find(raw) - 80, 0) : prose.find(raw) + 80])


@pytest.mark.parametrize("derivation", derivations(), ids=lambda d: d.claim)
def test_prose_keeps_its_math_between_dollars(derivation):
    """Source-level check: outside $…$ and `code` there is no subscript, superscript,
    Greek letter or math symbol (each would be typeset as text)."""
    from cmverify.proofs._prose import _spans, math_latex, unmarked_math

    fields = [
        derivation.title,
        *derivation.assumptions,
        derivation.statement,
        derivation.measured_by,
        *derivation.notes,
        *(step.reason for step in derivation.steps),
    ]
    for text in fields:
        assert unmarked_math(text) == set(), text
        for is_math, chunk in _spans(text):
            if is_math:
                assert math_latex(chunk).isascii()


def test_math_latex_maps_the_unicode_shorthand():
    from cmverify.proofs._prose import _spans, latex_prose, markdown_prose, math_latex

    assert math_latex("x_{s−Δ}") == r"x_{s-\Delta}"
    assert math_latex("α̇ x0 + σ̈ x1") == r"\dot{\alpha} x_{0} + \ddot{\sigma} x_{1}"
    assert math_latex("√(c_t/c_s) z_s") == r"\sqrt{c_t/c_s} z_s"
    assert math_latex("√λ") == r"\sqrt{\lambda}"
    assert math_latex("E[x0 | x_t = x]") == r"\mathbb{E}[x_{0} \mid x_t = x]"
    assert math_latex("f*(t, x) ~ N(0, I)") == r"f^{*}(t, x) \sim \mathcal{N}(0, I)"
    assert math_latex("c_skip") == r"c_{\mathrm{skip}}"
    assert math_latex("αt") == r"\alpha t"  # not \alphat
    with pytest.raises(ValueError, match="no LaTeX"):
        math_latex("ж")
    with pytest.raises(ValueError, match="unpaired"):
        _spans("a $b")
    assert latex_prose("see `tests/test_x.py` at $t = 0$") == (
        r"see \texttt{tests/\allowbreak{}test\_\allowbreak{}x.\allowbreak{}py} at $t = 0$"
    )
    assert markdown_prose("at $t = 0$, `x_t`") == "at $t = 0$, `x_t`"


def test_a_step_with_an_order_term_holds_only_up_to_that_order():
    from cmverify.proofs import Step

    y, h = sp.symbols("y h", real=True)
    F = sp.Function("F")
    taylor = F(y) - h * sp.diff(F(y), y) + h**2 / 2 * sp.diff(F(y), y, 2)
    assert Step(F(y - h), taylor + sp.O(h**3), "").holds()
    assert Step(F(y - h), F(y) + sp.O(h), "").holds()
    assert not Step(F(y - h), F(y) + sp.O(h**2), "").holds()  # misses −h F'
    assert not Step(F(y - h), taylor.subs(h**2, 2 * h**2) + sp.O(h**3), "").holds()
    with pytest.raises(ValueError, match="at x = 0"):
        Step(F(y - h), F(y) + sp.O(h - 1, (h, 1)), "").holds()


# --- the proofs read the claim catalogue (issue 11) -----------------------------------


def _minimal(**kwargs):
    from cmverify.proofs import Derivation, Step

    x = sp.Symbol("x", real=True)
    fields = {
        "claim": "FLOW-VELOCITY",
        "assumptions": ("none",),
        "statement": "$x + x = 2 x$.",
        "steps": (Step(x + x, 2 * x, "Add."),),
        "measured_by": "nothing",
    }
    return Derivation(**{**fields, **kwargs})


def test_a_derivation_of_a_claim_not_in_the_catalogue_is_refused():
    """Before: any string was a claim ID, and a typo gave a document nobody could cite."""
    with pytest.raises(
        ValueError,
        match=r"claim 'FLOW-VELOCITI' is not in cmverify\.claims\.CATALOGUE \(known: INT-BOUNDARY, ",
    ):
        _minimal(claim="FLOW-VELOCITI")
    assert _minimal().claim == "FLOW-VELOCITY"


def test_every_heading_is_the_catalogue_title():
    """Before: each derivation retyped its title (INT-BOUNDARY's had drifted from the
    catalogue's); now the heading is the catalogue's, its formulas set as math."""
    from cmverify.claims import CATALOGUE
    from cmverify.proofs import derivation_latex
    from cmverify.proofs._prose import latex_prose, markdown_prose

    for d in derivations():
        entry = CATALOGUE[d.claim]
        assert d.title.replace("$", "") == entry.title
        assert d.to_markdown().splitlines()[0] == f"# {d.claim}: {markdown_prose(d.title)}"
        assert f"\\section{{{d.claim}: {latex_prose(d.title)}}}" in derivation_latex(d)
    by_claim = {d.claim: d for d in derivations()}
    assert by_claim["SWAP-LOCAL"].title.endswith("costs $O(Δ²)$")
    assert by_claim["CT-GLOBAL"].title == "local errors add up to $O(Δ)$"
    assert (
        (PROOFS / "INT-BOUNDARY.md")
        .read_text()
        .startswith(
            "# INT-BOUNDARY: the interpolant's boundary conditions and its marginal for mixture data\n"
        )
    )


def test_param_boundary_states_the_catalogue_statement():
    """Its statement was a retyped copy of the catalogue's; the other derivations state
    more specific forms (one dimension, eigen-coordinates) and keep their own."""
    from cmverify.claims import CATALOGUE

    d = next(d for d in derivations() if d.claim == "PARAM-BOUNDARY")
    assert d.statement.replace("$", "") == CATALOGUE["PARAM-BOUNDARY"].statement + "."
    assert "$c_skip(0) = 1$" in d.statement and "$f(0, x) = x$" in d.statement
    for other in derivations():
        if other.claim != "PARAM-BOUNDARY":
            assert other.statement.replace("$", "") != CATALOGUE[other.claim].statement


def test_math_of_the_catalogue_must_be_marked():
    with pytest.raises(
        ValueError,
        match=r"SWAP-LOCAL: title has math outside .*\(list the formula in catalogue_math\)",
    ):
        _minimal(claim="SWAP-LOCAL")  # its title ends in "O(Δ²)"
    assert _minimal(claim="SWAP-LOCAL", catalogue_math=("O(Δ²)",)).title.endswith("$O(Δ²)$")
    with pytest.raises(
        ValueError,
        match=r"catalogue_math 'O\(Δ⁴\)' is in neither the catalogue's title nor its statement",
    ):
        _minimal(claim="SWAP-LOCAL", catalogue_math=("O(Δ²)", "O(Δ⁴)"))
    with pytest.raises(TypeError, match="catalogue_math must be a tuple, not one string"):
        _minimal(claim="SWAP-LOCAL", catalogue_math="O(Δ²)")
    with pytest.raises(
        ValueError, match=r"FLOW-VELOCITY: statement has math outside .*\(list the formula"
    ):
        _minimal(statement=None)  # the catalogue's statement, its formulas unmarked
    from cmverify.proofs import Step

    x = sp.Symbol("x", real=True)
    with pytest.raises(ValueError, match=r"steps\[0\]\.reason has math outside \$…\$ \(α\)"):
        _minimal(steps=(Step(x + x, 2 * x, "Add α."),))


def test_replace_keeps_a_derivation_valid():
    import dataclasses

    d = next(d for d in derivations() if d.claim == "PARAM-BOUNDARY")
    again = dataclasses.replace(d, notes=("A note.",))
    assert (again.title, again.statement) == (d.title, d.statement)


def test_mark_math():
    from cmverify.proofs._prose import mark_math, unmarked_math

    assert mark_math("a O(Δ) b O(Δ)", ("O(Δ)",)) == "a $O(Δ)$ b $O(Δ)$"
    assert mark_math("f(0, x) = x", ()) == "f(0, x) = x"
    with pytest.raises(ValueError, match="overlap"):
        mark_math("c_skip(0) = 1", ("c_skip(0)", "(0) = 1"))
    with pytest.raises(ValueError, match=r"already holds a \$"):
        mark_math("$x$", ("x",))
    assert unmarked_math("at $t = 0$, `x_t` — “quoted” …") == set()
    assert unmarked_math("x_t at α² |") == {"_", "α", "²", "|"}


def test_derivations_follow_the_catalogue_and_are_filed_under_their_id(monkeypatch):
    from cmverify.claims import CATALOGUE
    from cmverify.proofs import DERIVATIONS, _documents

    order = list(CATALOGUE)
    claims = [d.claim for d in derivations()]
    assert claims == sorted(DERIVATIONS, key=order.index) == sorted(claims, key=order.index)
    build = _documents.derivations.__wrapped__  # uncached: the patches below stay local
    monkeypatch.setattr(_documents, "DERIVATIONS", {"EULER-LOKAL": lambda: None})
    with pytest.raises(ValueError, match=r"not in cmverify\.claims\.CATALOGUE: \['EULER-LOKAL'\]"):
        build()
    monkeypatch.setattr(_documents, "DERIVATIONS", {"INT-BOUNDARY": _minimal})
    with pytest.raises(
        ValueError, match=r"DERIVATIONS\['INT-BOUNDARY'\] builds the derivation of FLOW-VELOCITY"
    ):
        build()


def test_proofs_cli_tells_a_measured_claim_from_an_unknown_id(capsys):
    assert main(["proofs", "--claim", "EULER-LOCAL"]) == 2
    assert "--claim EULER-LOCAL is measured only (`cmverify verify`)" in capsys.readouterr().err
    assert main(["proofs", "--claim", "FLOW-GAUSS", "--claim", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "--claim NOPE is not a claim id of the catalogue" in err and "FLOW-GAUSS" in err
