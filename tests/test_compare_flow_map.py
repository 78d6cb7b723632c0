"""compare_flow_map: a network equal to the Gaussian closed-form flow map scores at the
reference's accuracy in its own kind's convention; a known bias is reported at its size;
the model's own semigroup and Eulerian laws are measured; chains say whether more steps
help; inexpressible pairs are refused before any work; failures are reported per pair."""

import itertools
import json

import numpy as np
import pytest

import cmverify as cmv
from cmverify.compare import FlowMapComparison, compare_flow_map, default_pairs
from cmverify.reference import gaussian_flow_map

MEAN = np.array([1.0, -0.5])
COV = np.array([[0.3, 0.1], [0.1, 0.2]])
LINEAR = cmv.Interpolant.linear()


def gaussian_path() -> cmv.MixturePath:
    return cmv.MixturePath(cmv.GaussianMixture([1.0], [MEAN], [COV]), LINEAR)


def exact_map(x, s, t):  # the closed form, not the ODE solver
    return gaussian_flow_map(MEAN, COV, LINEAR, x, s, t)


def meanflow_u(z, r, t):  # MeanFlow: X_{t→r}(z) = z − (t − r) u
    h = (t - r)[:, None]
    return np.where(h > 0, (z - exact_map(z, t, r)) / np.where(h > 0, h, 1.0), 0.0)


def shortcut_s(x, tau, d):  # shortcut: X_{t→t−d}(x) = x + d s(x, 1 − t, d)
    t = 1.0 - tau
    return (exact_map(x, t, t - d) - x) / d[:, None]


PAIRS = [(1.0, 0.0), (1.0, 0.5), (0.8, 0.2), (0.5, 0.0), (0.3, 0.1)]


@pytest.mark.parametrize(
    ("kind", "model", "pairs"),
    [
        ("map", exact_map, PAIRS),
        ("meanflow", meanflow_u, PAIRS),
        ("shortcut", shortcut_s, [(1.0, 0.5), (0.5, 0.25), (1.0, 0.0), (0.75, 0.5)]),
    ],
)
def test_the_closed_form_map_scores_at_the_reference_accuracy(kind, model, pairs):
    result = compare_flow_map(model, gaussian_path(), kind=kind, pairs=pairs, n=200)
    assert result.ok, [f.describe() for f in result.failures]
    for r in result.pairs:
        assert r.max_error < 1e-9, (kind, r.s, r.t, r.max_error)
        if r.semigroup_rms is not None:
            assert r.semigroup_rms < 1e-12
        if r.eulerian_rms is not None:  # second-order differences, h = 1e-3
            assert r.eulerian_rms < 1e-5
    for chain in result.chains:
        assert chain.rmse < 1e-9


def test_a_bias_proportional_to_the_step_is_reported_at_its_size():
    """``X_θ(s→t) = X_{s→t} + (s − t) b``: the error at ``(s, t)`` is ``(s − t)|b|``
    exactly, the semigroup residual is ``|(s − u)(∇X_{u→t} − I) b|`` (not zero), and the
    chains' error does not vanish with more steps."""
    bias = np.array([0.0, 0.02])
    path = gaussian_path()

    def biased(x, s, t):
        return exact_map(x, s, t) + (s - t)[:, None] * bias

    result = compare_flow_map(biased, path, kind="map", pairs=PAIRS, n=200)
    for r in result.pairs:
        assert r.rmse == pytest.approx((r.s - r.t) * 0.02, rel=1e-8)
        assert r.max_error == pytest.approx((r.s - r.t) * 0.02, rel=1e-8)
    assert result.at(1.0, 0.0).semigroup_rms > 1e-3
    one, eight = result.chain(1), result.chain(8)
    assert one.rmse > 1e-3 and eight.rmse > 1e-3


def test_more_steps_help_a_model_whose_error_is_second_order_in_the_step():
    """A map off by ``(s − t)² b`` per call: a ``k``-step chain's error falls like ``1/k``."""
    bias = np.array([0.05, 0.0])

    def local(x, s, t):
        return exact_map(x, s, t) + ((s - t) ** 2)[:, None] * bias

    result = compare_flow_map(local, gaussian_path(), kind="map", pairs=PAIRS[:1], n=200)
    errors = [result.chain(k).rmse for k in (1, 2, 4, 8)]
    assert errors[0] == pytest.approx(0.05, rel=0.5)
    assert all(b < 0.7 * a for a, b in itertools.pairwise(errors))


def test_pairs_the_kind_cannot_express_are_refused_before_any_work():
    calls = []

    def counting(z, r, t):
        calls.append(1)
        return meanflow_u(z, r, t)

    with pytest.raises(ValueError, match=r"meanflow kind expresses only X_\{s→t\} with t ≤ s"):
        compare_flow_map(counting, gaussian_path(), kind="meanflow", pairs=[(0.5, 0.0), (0.2, 0.6)])
    assert calls == []
    with pytest.raises(ValueError, match="dyadic=True needs d = s − t = 2\\^-k"):
        compare_flow_map(
            shortcut_s, gaussian_path(), kind="shortcut", pairs=[(1.0, 0.3)], dyadic=True
        )
    with pytest.raises(ValueError, match="unknown kind 'flowmap'; valid kinds: map"):
        compare_flow_map(exact_map, gaussian_path(), kind="flowmap")
    with pytest.raises(ValueError, match="pairs must be a non-empty list of"):
        compare_flow_map(exact_map, gaussian_path(), pairs=[1.0, 0.0])
    with pytest.raises(ValueError, match=r"pairs must lie in \[0, 1\]"):
        compare_flow_map(exact_map, gaussian_path(), pairs=[(1.2, 0.0)])
    with pytest.raises(ValueError, match="schedule must decrease strictly from 1 to 0"):
        compare_flow_map(exact_map, gaussian_path(), pairs=PAIRS[:1], schedule=[1.0, 0.5])


def test_failures_are_reported_per_pair_never_averaged():
    def broken(x, s, t):
        out = exact_map(x, s, t)
        if np.isclose(s[0], 0.8):
            out[5] = np.inf
        return out

    result = compare_flow_map(broken, gaussian_path(), kind="map", pairs=PAIRS, n=50)
    bad = result.at(0.8, 0.2)
    assert bad.failure is not None and bad.rmse is None
    assert "NaN or inf" in bad.failure.message
    assert result.at(1.0, 0.0).rmse < 1e-9
    assert any(f.s == 0.8 for f in result.failures)

    def raises(x, s, t):
        raise RuntimeError("no")

    failed = compare_flow_map(raises, gaussian_path(), kind="map", pairs=PAIRS[:2], n=20)
    assert all(r.failure.kind == "exception" for r in failed.pairs)
    assert all(c.failure is not None for c in failed.chains)


def test_default_pairs_cover_what_each_kind_expresses():
    assert len(default_pairs("meanflow")) == 55
    assert all(t < s for s, t in default_pairs("map"))
    assert default_pairs("consistency") == [(s / 10, 0.0) for s in range(10, 0, -1)]
    assert max(s for s, _ in default_pairs("ctm")) == 0.9
    shortcut = default_pairs("shortcut")
    assert (1.0, 0.0) in shortcut and (0.0625, 0.0) in shortcut and len(shortcut) == 31


def test_a_consistency_model_and_a_schedule(tmp_path):
    path = gaussian_path()
    one_time = {"kind": "consistency", "n": 100, "pairs": [(1.0, 0.0), (0.4, 0.0)]}
    result = compare_flow_map(lambda t, x: exact_map(x, t, 0.0), path, **one_time)
    assert [c.steps for c in result.chains] == [1]  # a one-time kind's chain is one step
    assert result.at(0.4, 0.0).max_error < 1e-9
    with pytest.raises(ValueError, match="the consistency kind maps to t = 0 only"):
        compare_flow_map(lambda t, x: x, path, **one_time, schedule=[1.0, 0.6, 0.0])
    schedule = compare_flow_map(exact_map, path, pairs=PAIRS[:1], n=100, schedule=[1.0, 0.6, 0.0])
    assert schedule.chains[-1].times == [1.0, 0.6, 0.0] and schedule.chains[-1].rmse < 1e-9
    back = FlowMapComparison.from_json(schedule.to_json())
    assert back.to_dict() == json.loads(schedule.to_json())
    assert "| 1 → 0 |" in schedule.to_markdown()
    assert [p.name for p in schedule.plot(tmp_path)] == ["flow_map_errors.png"]


def test_assert_flow_map_matches_names_the_pair_and_the_worst_point():
    from cmverify.testing import assert_flow_map_matches

    path = gaussian_path()
    assert_flow_map_matches(meanflow_u, path, atol=1e-9, kind="meanflow", pairs=PAIRS, n=100)

    def off_late(z, r, t):
        return meanflow_u(z, r, t) + (r < 0.05)[:, None] * np.array([0.1, 0.0])

    with pytest.raises(AssertionError) as info:
        assert_flow_map_matches(off_late, path, atol=0.01, kind="meanflow", pairs=PAIRS, n=100)
    text = str(info.value)
    assert "(1 → 0): max |X_θ − X| = 0.1 > atol = 0.01" in text
    assert "(0.5 → 0): max |X_θ − X| = 0.05" in text and "(1 → 0.5)" not in text


def test_cli_compares_a_flow_map_network(tmp_path, capsys):
    from cmverify.cli import main

    model_file = tmp_path / "fm.py"
    model_file.write_text(
        "import numpy as np\n"
        "import cmverify as cmv\n"
        "MIX = cmv.mixtures.gaussian()\n"
        "def net(x, s, t):\n"
        "    return cmv.gaussian_flow_map(MIX.means[0], MIX.covs[0], cmv.Interpolant.linear(), x, s, t)\n"
    )
    out = tmp_path / "report"
    args = ["compare", f"{model_file}:net", "--mixture", "gaussian", "-n", "100", "--kind", "map"]
    assert main([*args, "--json", "--out", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "map" and max(p["max_error"] for p in payload["pairs"]) < 1e-9
    assert (out / "flow_map_comparison.md").exists() and (out / "flow_map_errors.png").exists()
    assert main([*args, "--atol", "1"]) == 2
