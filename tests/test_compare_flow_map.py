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
    with pytest.raises(
        ValueError, match=r"schedule must decrease strictly from a time in \(0, 1\]"
    ):
        compare_flow_map(exact_map, gaussian_path(), pairs=PAIRS[:1], schedule=[1.0, 0.5])
    with pytest.raises(TypeError, match="pairs must hold floats, got a bool"):
        compare_flow_map(exact_map, gaussian_path(), pairs=[(True, 0.0)])
    with pytest.raises(TypeError, match="schedule must be a float or an array of floats"):
        compare_flow_map(exact_map, gaussian_path(), pairs=PAIRS[:1], schedule=[True, 0.0])
    assert calls == []


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
    assert [f.describe() for f in result.failures if f.what == "X_{s→t}"] == [
        bad.failure.describe()
    ]  # once, not once per list it was found in

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
    names = [p.name for p in schedule.plot(tmp_path)]
    assert names == ["flow_map_errors.png", "flow_map_samples.png"]
    assert [p.name for p in back.plot(tmp_path / "back")] == ["flow_map_errors.png"]


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


def trig_gaussian_path() -> cmv.MixturePath:
    return cmv.MixturePath(cmv.GaussianMixture([1.0], [MEAN], [COV]), cmv.Interpolant.trig())


def test_trigflow_is_judged_on_its_own_scaled_process():
    """TrigFlow's network ``F(x̂, τ)`` with ``σ_d = 0.5`` is exact when ``cos τ x −
    sin τ σ_d F(x/σ_d, τ) = σ_d X̂_{s→0}(x/σ_d)`` with ``X̂`` the closed-form map of the data
    scaled by ``1/σ_d`` on the trig path; the user's own path's map (right only at
    ``σ_d = 1``) is reported wrong, and a linear path is refused."""
    sd, trig = 0.5, cmv.Interpolant.trig()

    def scaled_map(x_hat, s):
        return gaussian_flow_map(MEAN / sd, COV / sd**2, trig, x_hat, s, np.zeros_like(s))

    def exact_f(x_hat, tau):  # F = (cos τ x̂ − X̂_{s→0}(x̂)) / sin τ, s = 2τ/π > 0 here
        s = tau * 2 / np.pi
        return (np.cos(tau)[:, None] * x_hat - scaled_map(x_hat, s)) / np.sin(tau)[:, None]

    def own_path_f(x_hat, tau):  # the map of the user's trig path, at σ_d = 1's scale
        s = tau * 2 / np.pi
        x = sd * x_hat
        own = gaussian_flow_map(MEAN, COV, trig, x, s, np.zeros_like(s))
        return (np.cos(tau)[:, None] * x - own) / (np.sin(tau)[:, None] * sd)

    path = trig_gaussian_path()
    good = compare_flow_map(exact_f, path, kind="trigflow", n=200, sigma_data=sd)
    assert good.ok and max(r.max_error for r in good.pairs) < 1e-9
    assert good.chains[0].rmse < 1e-9 and good.convention == {"sigma_data": 0.5}
    wrong = compare_flow_map(own_path_f, path, kind="trigflow", n=200, sigma_data=sd)
    assert wrong.at(1.0, 0.0).relative_rmse > 0.1
    with pytest.raises(ValueError, match="the trigflow kind needs a path with the trig"):
        compare_flow_map(exact_f, gaussian_path(), kind="trigflow", n=10, sigma_data=sd)


def test_ctm_chains_start_where_its_variables_are_finite():
    """CTM's ``G(y, ς, ς')`` from the closed form (linear: ``ς = t/(1 − t)``): every
    default pair and chain scores at the reference's accuracy, the chains starting at
    ``ς = 80`` (``t = 80/81``)."""

    def ctm_g(y, varsigma, varsigma_prime):
        t, s = varsigma / (1 + varsigma), varsigma_prime / (1 + varsigma_prime)
        return exact_map((1 - t)[:, None] * y, t, s) / (1 - s)[:, None]

    result = compare_flow_map(ctm_g, gaussian_path(), kind="ctm", n=100, interpolant="linear")
    assert result.ok, [f.describe() for f in result.failures]
    assert max(r.max_error for r in result.pairs) < 1e-9
    assert [c.times[0] for c in result.chains] == [pytest.approx(80 / 81, rel=1e-15)] * 4
    assert max(c.rmse for c in result.chains) < 1e-9
    assert result.chain(2).times[1] == pytest.approx(40 / 81, rel=1e-15)
    assert result.convention == {"interpolant": "linear"}


def test_a_dyadic_shortcut_network_is_compared_on_its_grid():
    result = compare_flow_map(
        shortcut_s, gaussian_path(), kind="shortcut", n=100, dyadic=True, d_min=1 / 8
    )
    assert result.ok, [f.describe() for f in result.failures]
    assert {round(r.s - r.t, 12) for r in result.pairs} == {1, 0.5, 0.25, 0.125}
    assert all(r.eulerian_rms is None for r in result.pairs)  # s ± h is off the grid
    assert result.at(1.0, 0.0).semigroup_rms < 1e-12
    assert result.at(0.25, 0.0).semigroup_rms < 1e-12  # halves of d = 1/4 are d_min
    assert result.at(0.125, 0.0).semigroup_rms is None


def test_residuals_that_overflow_are_failures_and_the_json_stays_strict(tmp_path):
    """Huge but finite outputs of ``X_θ(1 → 0.5)`` make the semigroup residual of
    ``(1, 0)`` overflow: a failure naming it, never a NaN in the report."""

    def huge_half(x, s, t):
        out = exact_map(x, s, t)
        return np.where(((s == 1.0) & (t == 0.5))[:, None], 1e300, out)

    result = compare_flow_map(huge_half, gaussian_path(), pairs=PAIRS[:2], n=20)
    whats = [f.what for f in result.failures if (f.s, f.t) == (1.0, 0.0)]
    assert whats == ["semigroup X_θ(u→t)∘X_θ(s→u), u = 0.5", "2-step chain from t = 1"]
    assert result.at(1.0, 0.0).semigroup_rms is None and result.at(1.0, 0.0).rmse < 1e-9
    assert result.at(1.0, 0.5).failure.kind == "non-finite error"
    written = result.save(tmp_path / "out")
    assert [p.name for p in written][:2] == ["flow_map_comparison.json", "flow_map_comparison.md"]
    json.loads((tmp_path / "out" / "flow_map_comparison.json").read_text())


def test_cli_passes_each_kinds_options_and_refuses_another_kinds(tmp_path, capsys):
    from cmverify.cli import main

    model_file = tmp_path / "nets.py"
    model_file.write_text(
        "import numpy as np\n"
        "import cmverify as cmv\n"
        "MIX = cmv.mixtures.gaussian()\n"
        "LIN = cmv.Interpolant.linear()\n"
        "def X(x, s, t):\n"
        "    return cmv.gaussian_flow_map(MIX.means[0], MIX.covs[0], LIN, x, s, t)\n"
        "def u(z, t, h):  # MeanFlow fed (t, t - r)\n"
        "    safe = np.where(h > 0, h, 1.0)[:, None]\n"
        "    return np.where(h[:, None] > 0, (z - X(z, t, t - h)) / safe, 0.0)\n"
        "def s(x, tau, d):\n"
        "    return (X(x, 1 - tau, 1 - tau - d) - x) / d[:, None]\n"
    )
    base = ["compare", "--mixture", "gaussian", "-n", "50", "--json"]
    assert main([*base, f"{model_file}:u", "--kind", "meanflow", "--time-inputs", "t,t-r"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["convention"] == {"time_inputs": "t,t-r"}
    assert max(p["max_error"] for p in payload["pairs"]) < 1e-9
    short = [*base, f"{model_file}:s", "--kind", "shortcut", "--dyadic", "--d-min", "0.125"]
    assert main(short) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["convention"] == {"dyadic": True, "d_min": 0.125} and not payload["failures"]
    for wrong, message in (
        (["--kind", "map", "--sigma-data", "0.5"], "--sigma-data applies to --kind trigflow only"),
        (["--kind", "map", "--parameterization", "x0"], "--parameterization applies to --kind"),
        (["--kind", "velocity", "--dyadic"], "--dyadic applies to --kind shortcut only"),
        (["--kind", "map", "--signature", "x,t"], "--signature applies to --kind consistency"),
        (["--kind", "shortcut", "--d-min", "0.25"], "--d-min applies with --dyadic only"),
    ):
        capsys.readouterr()
        assert main([*base, f"{model_file}:X", *wrong]) == 2
        assert message in capsys.readouterr().err


def _torch_gaussian_map(torch, bias):
    """The closed-form flow map of N(MEAN, COV) on the linear path as a torch module
    ``X(x, s, t) = α_t μ + U diag(√(c_t/c_s)) Uᵀ (x − α_s μ) + s·bias``, ``c = α²λ + σ²``."""
    lam, vecs = np.linalg.eigh(COV)

    class GaussianMap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(MEAN))
            self.register_buffer("lam", torch.tensor(lam))
            self.register_buffer("vecs", torch.tensor(vecs))
            self.register_buffer("bias", torch.tensor(bias))

        def forward(self, x, s, t):
            a_s, a_t = (1 - s)[:, None], (1 - t)[:, None]
            c_s = a_s**2 * self.lam + s[:, None] ** 2
            c_t = a_t**2 * self.lam + t[:, None] ** 2
            y = (x - a_s * self.mean) @ self.vecs
            return (
                a_t * self.mean + (torch.sqrt(c_t / c_s) * y) @ self.vecs.T + s[:, None] * self.bias
            )

    return GaussianMap()


def test_a_torch_network_s_eulerian_residual_is_taken_by_jvp():
    """The Eulerian residual by ``torch.func.jvp``: at rounding for the closed-form map, and
    exactly ``|b|`` for ``X + s b`` (``∂_s`` adds ``b``; ``v_θ = ∂_t X|_{t=s}`` is unchanged),
    whose pair errors are ``s |b|``; a numpy twin is measured by differences."""
    torch = pytest.importorskip("torch")
    exact = compare_flow_map(
        _torch_gaussian_map(torch, [0.0, 0.0]), gaussian_path(), pairs=PAIRS[:3], n=40
    )
    assert exact.ok and max(r.max_error for r in exact.pairs) < 1e-9
    assert all(r.eulerian_method == "jvp" and r.eulerian_rms < 1e-13 for r in exact.pairs)
    b = np.array([0.03, -0.04])
    biased = compare_flow_map(_torch_gaussian_map(torch, b), gaussian_path(), pairs=PAIRS[:3], n=40)
    for r in biased.pairs:
        assert r.eulerian_rms == pytest.approx(0.05, rel=1e-12)
        assert r.max_error == pytest.approx(r.s * 0.05, rel=1e-8)
    numpy_twin = compare_flow_map(exact_map, gaussian_path(), pairs=PAIRS[:1], n=100)
    assert numpy_twin.pairs[0].eulerian_method == "differences"


def test_review_fixes_dyadic_chains_fallbacks_and_labels():
    """A dyadic shortcut network with d_min = 1/4 runs (chains of steps ≥ d_min only); a
    torch module that leaves torch is measured by differences, not failed; a boolean
    output is a failure; the network's own ValueError is an exception, kept whole."""
    torch = pytest.importorskip("torch")
    path = gaussian_path()
    coarse = compare_flow_map(shortcut_s, path, kind="shortcut", n=30, dyadic=True, d_min=0.25)
    assert coarse.ok and [c.steps for c in coarse.chains] == [1, 2, 4]

    class ThroughNumpy(torch.nn.Module):
        def forward(self, x, s, t):
            return torch.from_numpy(exact_map(x.numpy(), s.numpy(), t.numpy()))

    via_numpy = compare_flow_map(ThroughNumpy(), path, pairs=PAIRS[:2], n=30)
    assert via_numpy.ok and all(r.eulerian_method == "differences" for r in via_numpy.pairs)
    boolean = compare_flow_map(lambda x, s, t: exact_map(x, s, t) > 0, path, pairs=PAIRS[:1], n=10)
    assert "output is boolean" in boolean.pairs[0].failure.message

    def raises_value_error(x, s, t):
        raise ValueError("operands could not be broadcast\nsecond line")

    own = compare_flow_map(raises_value_error, path, pairs=PAIRS[:1], n=10).pairs[0].failure
    assert own.kind == "exception" and "second line" in own.message


def test_the_eulerian_residual_is_the_same_quantity_by_jvp_and_by_differences():
    """``X = 1.1 X_exact + c`` breaks the boundary law (``X(s→s) − x = 0.1 x + c``, reported
    as ``boundary_rms``); its Eulerian residual ``∂_s X + ∇X v_θ`` with ``v_θ = ∂_t X|_{t=s}``
    is one quantity, by JVP (torch) and by differences (numpy) alike."""
    torch = pytest.importorskip("torch")
    c = np.array([0.01, 0.0])
    base = _torch_gaussian_map(torch, [0.0, 0.0])

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base  # its float64 buffers set the dtype the module is fed

        def forward(self, x, s, t):
            return 1.1 * self.base(x, s, t) + torch.tensor(c)

    def scaled(x, s, t):
        return 1.1 * exact_map(x, s, t) + c

    pairs = [(0.8, 0.2), (0.5, 0.0)]
    by_jvp = compare_flow_map(Scaled(), gaussian_path(), pairs=pairs, n=100)
    by_diff = compare_flow_map(scaled, gaussian_path(), pairs=pairs, n=100)
    for a, b in zip(by_jvp.pairs, by_diff.pairs, strict=True):
        assert (a.eulerian_method, b.eulerian_method) == ("jvp", "differences")
        assert a.eulerian_rms == pytest.approx(b.eulerian_rms, rel=1e-4)
        assert a.boundary_rms == pytest.approx(b.boundary_rms, rel=1e-12) and a.boundary_rms > 0.01


def test_a_torch_network_that_zeroes_its_input_is_measured_on_the_true_input():
    """A module that zeroes its input in place after reading it: each JVP call gets its own
    copy, so the Eulerian residual of the exact map stays at rounding."""
    torch = pytest.importorskip("torch")
    base = _torch_gaussian_map(torch, [0.0, 0.0])

    class Zeroing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base

        def forward(self, x, s, t):
            out = self.base(x, s, t)
            x.zero_()
            return out

    result = compare_flow_map(Zeroing(), gaussian_path(), pairs=PAIRS[:2], n=30)
    assert result.ok and max(r.max_error for r in result.pairs) < 1e-9
    assert all(r.eulerian_method == "jvp" and r.eulerian_rms < 1e-13 for r in result.pairs)
