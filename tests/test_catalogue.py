"""The claim as an object: the catalogue, cases and settings, and the runner's duties
(case selection, per-case seeds, stamping, progress, validation of what a claim returns)."""

import dataclasses
import re

import numpy as np
import pytest

from cmverify.claims import (
    CATALOGUE,
    BatteryConfig,
    Case,
    Check,
    Claim,
    ClaimResult,
    battery_cases,
    case_seed,
    catalogue_markdown,
    checks_table,
    run_battery,
    run_case,
    run_claim,
)
from cmverify.claims import _boundary as boundary_module

#: DESIGN.md's catalogue, in its order, then its contract additions.
DESIGN_IDS = [
    "INT-BOUNDARY",
    "FLOW-VELOCITY",
    "FLOW-GAUSS",
    "FLOW-QUANTILE",
    "FLOW-MAP",
    "EULER-LOCAL",
    "SWAP-LOCAL",
    "CT-LOCAL",
    "CT-GLOBAL",
    "CT-GAUSS",
    "SONG-T1",
    "SONG-T2",
    "MULTISTEP",
    "PARAM-BOUNDARY",
    # DESIGN.md's contract additions (the flow-map issue)
    "FLOWMAP-IDENTITIES",
    "MEANFLOW-IDENTITY",
    # the training targets (FLOWMAP.md §3, the targets issue)
    "MEANFLOW-FLOOR",
    "MEANFLOW-WEIGHTING",
    "SHORTCUT-BASE",
    "SCM-TANGENT",
    "PSEUDO-HUBER",
    "CONVENTIONS",
]
QUICK = BatteryConfig.quick_config()


def test_the_catalogue_is_designs_in_its_order():
    assert list(CATALOGUE) == DESIGN_IDS
    for claim_id, claim in CATALOGUE.items():
        assert claim.id == claim_id
        assert claim.title and "\n" not in claim.title and len(claim.title) <= 80
        assert claim.cases and claim.selected_cases(QUICK)
    assert "½ Δ² a(s, y) + O(Δ³)" in CATALOGUE["EULER-LOCAL"].statement
    assert "F_data⁻¹(Φ(x1))" in CATALOGUE["FLOW-QUANTILE"].statement
    with pytest.raises(TypeError):
        CATALOGUE["NEW"] = CATALOGUE["EULER-LOCAL"]  # read-only


def test_quick_policy_lives_in_the_settings_and_the_cases():
    """Quick: one interpolant per mixture (both interpolants appear), CT-GLOBAL and
    SONG-T1 on the linear interpolant only; full: every case."""
    quick = {c.name for c in CATALOGUE["EULER-LOCAL"].selected_cases(QUICK)}
    assert quick == {"seed_bimodal/trig", "eight_gaussians/linear", "gaussian/trig"}
    assert [n for n, _ in battery_cases(QUICK)] == [
        "seed_bimodal/trig",
        "eight_gaussians/linear",
        "gaussian/trig",
    ]
    assert len(battery_cases()) == 6 and len(CATALOGUE["EULER-LOCAL"].cases) == 6
    assert [c.name for c in CATALOGUE["CT-GLOBAL"].selected_cases(QUICK)] == ["mild_bimodal/linear"]
    assert len(CATALOGUE["CT-GLOBAL"].selected_cases(BatteryConfig())) == 2
    assert [c.name for c in CATALOGUE["FLOW-MAP"].selected_cases(QUICK)] == [
        "seed_bimodal/trig",
        "eight_gaussians/linear",
    ]
    assert QUICK.quick and not QUICK.target_in_2d and QUICK.gauss_ns == (64, 128, 256)
    assert BatteryConfig.quick_config(seed=5).seed == 5


def test_case_seed_is_stable_and_distinct():
    """CRC-32 of the names, not Python's salted ``hash``: the same numbers in every
    process (this value was computed once and must never change)."""
    state = case_seed(20231, "EULER-LOCAL", "eight_gaussians/linear").generate_state(2)
    np.testing.assert_array_equal(state, [3573595708, 1345159131])
    others = [
        case_seed(20232, "EULER-LOCAL", "eight_gaussians/linear"),
        case_seed(20231, "SWAP-LOCAL", "eight_gaussians/linear"),
        case_seed(20231, "EULER-LOCAL", "eight_gaussians/trig"),
    ]
    for other in others:
        assert not np.array_equal(other.generate_state(2), state)


def _draws(case, settings, rng):
    return [Check("draw", "", rng.random(), 1.0, "uniform")]


def _labelled(case, settings, rng):
    return [
        Check("a", "", 0.0, 1.0, "b"),
        Check("a", "F = cubic", 0.0, 1.0, "b"),
        Check("a", case.name, 0.0, 1.0, "b"),
        Check("a", f"{case.name}, F = f*", 0.0, 1.0, "b"),
    ]


def _claim(claim_id, measure, *cases):
    return Claim(claim_id, "a title", "a statement", cases or (Case("one"),), measure)


def test_the_runner_stamps_the_case_and_seeds_each_case_on_its_own():
    draws = _claim("DRAWS", _draws, Case("one"), Case("two", quick=False))
    labels = _claim("LABELS", _labelled, Case("c"))
    catalogue = {"LABELS": labels, "DRAWS": draws}
    assert [c.case for c in run_case(labels, Case("c"))] == ["c", "c, F = cubic", "c", "c, F = f*"]
    alone = run_battery(QUICK, only=["DRAWS"], catalogue=catalogue)
    both = run_battery(QUICK, catalogue=catalogue)
    assert [r.id for r in both] == ["LABELS", "DRAWS"]  # catalogue order
    assert alone[0].checks == both[1].checks  # a case draws the same alone or in company
    assert [c.case for c in alone[0].checks] == ["one"]  # "two" is not quick
    full = run_claim(draws, BatteryConfig())
    assert [c.case for c in full.checks] == ["one", "two"]
    assert full.checks[0] == alone[0].checks[0]  # same seed, same case → same draw
    assert full.checks[0].measured != full.checks[1].measured
    expected = np.random.default_rng(case_seed(QUICK.seed, "DRAWS", "one")).random()
    assert alone[0].checks[0].measured == expected


def test_progress_has_a_line_per_case_with_its_time_and_a_verdict():
    lines = []
    run_claim(_claim("DRAWS", _draws, Case("one"), Case("two")), QUICK, lines.append)
    assert re.fullmatch(r"DRAWS one \(\d+\.\d\d s\)", lines[0])
    assert lines[1].startswith("DRAWS two (") and re.fullmatch(
        r"DRAWS: PASS \(\d+\.\d s\)", lines[2]
    )


@pytest.mark.parametrize(
    ("returned", "error", "match"),
    [
        (Check("a", "", 0.0, 1.0, "b"), TypeError, "sequence of Check"),
        (None, TypeError, "sequence of Check"),
        ([1.0], TypeError, "returned float, not a Check"),
        ([], ValueError, "returned no checks"),
    ],
)
def test_a_measure_returning_something_else_is_a_clear_error(returned, error, match):
    claim = _claim("BAD", lambda case, settings, rng: returned)
    with pytest.raises(error, match=match):
        run_case(claim, claim.cases[0])


def test_unknown_ids_are_refused_and_one_id_may_be_a_string():
    with pytest.raises(ValueError, match=r"unknown claim id\(s\) \['NOPE'\]"):
        run_battery(QUICK, only=["NOPE"])
    with pytest.raises(ValueError, match=r"unknown claim id\(s\) \['NOPE'\]"):
        run_battery(QUICK, only="NOPE")  # not the letters N, O, P, E
    assert [r.id for r in run_battery(QUICK, only="PARAM-BOUNDARY")] == ["PARAM-BOUNDARY"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id": "MY CLAIM"}, "claim id must be"),
        ({"id": ""}, "claim id must be"),
        ({"id": "MY[CLAIM]"}, "claim id must be"),
        ({"title": "two\nlines"}, "title must be one non-empty line"),
        ({"statement": " "}, "statement must be one non-empty line"),
        ({"cases": ()}, "cases must be a non-empty sequence"),
        ({"cases": ("gaussian/linear",)}, "cases must be a non-empty sequence"),
        ({"cases": Case("a")}, "cases must be a non-empty sequence"),
        ({"cases": "a"}, "cases must be a non-empty sequence"),
        ({"cases": (Case("a", quick=False),)}, "no case is quick"),
        ({"cases": (Case("a"), Case("a"))}, "case names repeat"),
        ({"measure": "euler"}, "measure must be callable"),
    ],
)
def test_a_malformed_claim_is_refused_naming_the_argument(change, match):
    good = {"id": "MY-CLAIM", "title": "t", "statement": "s", "cases": (Case("a"),)}
    with pytest.raises((TypeError, ValueError), match=match):
        Claim(**{**good, "measure": _draws, **change})


def test_cases_check_their_names_and_build_their_path_once():
    with pytest.raises(ValueError, match="unknown mixture 'nine_gaussians'"):
        Case.named("nine_gaussians", "linear")
    with pytest.raises(ValueError, match="unknown interpolant 'cosine'; known: linear, trig"):
        Case.named("gaussian", "cosine")
    assert Case.named("Eight-Gaussians", "Cos-Linear").name == "eight_gaussians/cos_linear"
    with pytest.raises(ValueError, match="case name must be"):
        Case("")
    with pytest.raises(AttributeError, match="has no path"):
        _ = Case("symbolic").path
    with pytest.raises(TypeError, match="build returned int, not a MixturePath"):
        _ = Case("bad", lambda: 3).path
    case = Case.named("gaussian", "trig", quick=False)
    assert case.name == "gaussian/trig" and not case.quick
    assert case.path is case.path and case.path.interpolant.name == "trig"


def test_catalogue_markdown_is_one_valid_row_per_claim():
    lines = catalogue_markdown().splitlines()
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines]
    assert {len(c) for c in cells} == {3}  # FLOW-VELOCITY's "| x_t" stays in its cell
    assert [c[0].strip() for c in cells[2:]] == DESIGN_IDS
    assert "| seed\\_bimodal/linear, **seed\\_bimodal/trig**, " in lines[2]
    results = [ClaimResult("FLOW-GAUSS", "t", (Check("a", "c", 0.5, 1.0, "b"),))]
    with_results = catalogue_markdown(results).splitlines()
    assert with_results[0].endswith("| measured |")
    assert with_results[4].endswith("| 0.5 pass |") and with_results[2].endswith("| not run |")


def test_checks_table_shows_value_prediction_tolerance_and_budget():
    table = checks_table(
        [
            Check.against("order", "eight/linear", 1.5, 2.0, 0.05, "fit", "on [1e-3, 1e-2]"),
            Check("gap", "eight/linear", 3e-13, 1e-12, "rounding"),
        ]
    ).splitlines()
    assert table[1].split() == (
        "FAIL order eight/linear 0.5 (value 1.5, expected 2) 0.05 on [1e-3, 1e-2] fit".split()
    )
    assert table[2].split() == "pass gap eight/linear 3e-13 1e-12 rounding".split()


def test_param_boundary_fails_a_scaling_that_is_not_exact_at_zero(monkeypatch):
    """PARAM-BOUNDARY measures the trainer's scalings: with ``c_out(0) = 1e-12`` instead
    of 0 both checks fail (the network's output leaks into ``f(0, x)``)."""
    claim = CATALOGUE["PARAM-BOUNDARY"]
    case = claim.cases[0]
    assert all(c.passed for c in run_case(claim, case, QUICK))
    exact = boundary_module.consistency_scalings_numeric()

    def leaky():
        return lambda a, s, d: (exact(a, s, d)[0], exact(a, s, d)[1] + 1e-12)

    monkeypatch.setattr(boundary_module, "consistency_scalings_numeric", leaky)
    checks = run_case(claim, case, QUICK)
    assert [c.passed for c in checks] == [False, False]
    assert checks[0].measured == 1e-12


def test_a_replaced_measure_runs_through_the_catalogue_interface():
    """A claim is data: ``dataclasses.replace`` gives a variant the runner runs as is."""
    variant = dataclasses.replace(CATALOGUE["INT-BOUNDARY"], measure=_draws)
    result = run_claim(variant, QUICK)
    assert result.id == "INT-BOUNDARY" and result.statement == variant.statement
    assert [c.case for c in result.checks] == [c.name for c in variant.selected_cases(QUICK)]


def test_the_readme_claims_table_is_the_catalogue():
    """README's claims table is ``catalogue_markdown()`` as generated, and its measured
    table names each catalogue claim once, in order."""
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- catalogue:")[1].split("<!-- /catalogue -->")[0]
    assert block.split("-->\n", 1)[1] == catalogue_markdown()
    measured = readme.split("| id | measured (full battery) |")[1].split("\n\n")[0]
    ids = [i.strip() for row in measured.splitlines()[2:] for i in row.split("|")[1].split(",")]
    assert ids == list(CATALOGUE)
