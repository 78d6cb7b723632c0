"""compare_velocity: exact models score at rounding in every parameterization and time
convention (written here from the Gaussian closed forms, not from the library), a known
bias is reported at its size, the loss splits into floor + excess, the induced flow of
the exact field lands on the exact map, and failures are reported per time."""

import json

import numpy as np
import pytest

import cmverify as cmv
from cmverify.compare import VelocityComparison, compare_velocity

MEAN = np.array([0.5, -1.0])
COV = np.array([[0.6, 0.25], [0.25, 0.4]])


def gaussian_path() -> cmv.MixturePath:
    return cmv.MixturePath(cmv.GaussianMixture([1.0], [MEAN], [COV]), cmv.Interpolant.linear())


def _gaussian_posterior(t: np.ndarray, x: np.ndarray):
    """For x0 ~ N(μ, Σ) and the linear path: ``D = μ + α Σ C⁻¹ (x − α μ)``, ``C = α²Σ + σ²I``,
    and ``E[x1 | x] = σ C⁻¹ (x − α μ)``, row by row (one time per row)."""
    t = np.broadcast_to(np.asarray(t, dtype=float), (len(x),))
    d_out, e_out = np.empty_like(x), np.empty_like(x)
    for i, (ti, xi) in enumerate(zip(t, x, strict=True)):
        a, s = 1.0 - ti, ti
        c = a * a * COV + s * s * np.eye(2)
        r = np.linalg.solve(c, xi - a * MEAN)
        d_out[i] = MEAN + a * COV @ r
        e_out[i] = s * r
    return d_out, e_out


def exact_velocity(t, x):  # linear: v = E[x1 − x0 | x]
    d, e = _gaussian_posterior(t, x)
    return e - d


def exact_denoiser(t, x):
    return _gaussian_posterior(t, x)[0]


def exact_noise(t, x):
    return _gaussian_posterior(t, x)[1]


def exact_score(t, x):
    t = np.broadcast_to(np.asarray(t, dtype=float), (len(x),))
    out = np.empty_like(x)
    for i, (ti, xi) in enumerate(zip(t, x, strict=True)):
        a, s = 1.0 - ti, ti
        out[i] = -np.linalg.solve(a * a * COV + s * s * np.eye(2), xi - a * MEAN)
    return out


@pytest.mark.parametrize(
    ("parameterization", "model"),
    [
        ("velocity", exact_velocity),
        ("x0", exact_denoiser),
        ("noise", exact_noise),
        ("score", exact_score),
    ],
)
def test_exact_models_score_at_rounding_in_every_parameterization(parameterization, model):
    result = compare_velocity(model, gaussian_path(), parameterization=parameterization, n=200)
    assert result.ok, result.failures
    for report in result.per_time:
        assert report.rmse < 1e-12, (parameterization, report.t, report.rmse)
        assert report.excess_loss < 1e-24
    assert result.induced.rmse < 1e-6
    if parameterization == "x0":
        assert result.per_time[0].t == 0.1  # t = 0 cannot be converted
        assert result.induced.t_end == pytest.approx(1e-3)
    if parameterization in ("noise", "score"):
        assert result.per_time[-1].t == 0.9
        assert result.induced.t_start == pytest.approx(1 - 1e-3)
    if parameterization == "score":  # σ = 0 multiplies any score away at t = 0
        assert result.per_time[0].t == 0.1
        assert result.induced.t_end == pytest.approx(1e-3)


def test_noise_at_zero_convention_negates_the_velocity_and_reverses_time():
    """flow_matching / torchcfm: their network at τ is ``−v(1 − τ, x)``."""
    result = compare_velocity(
        lambda tau, x: -exact_velocity(1.0 - tau, x),
        gaussian_path(),
        time_convention="noise_at_0",
        n=200,
    )
    assert max(r.rmse for r in result.per_time) < 1e-12
    # the same network read in our convention is wrong by 2|v| at t = 1/2's mirror image
    wrong = compare_velocity(
        lambda tau, x: -exact_velocity(1.0 - tau, x), gaussian_path(), n=200, induced_flow=False
    )
    assert wrong.at(0.5).rmse > 0.1


def test_a_constant_bias_is_reported_at_its_size_and_the_loss_splits():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.trig())
    bias = np.array([0.03, -0.04])  # |b| = 0.05
    result = compare_velocity(lambda t, x: path.velocity(t, x) + bias, path, n=2000)
    for r in result.per_time:
        assert r.rmse == pytest.approx(0.05, rel=1e-12)
        assert r.max_error == pytest.approx(0.05, rel=1e-12)
        assert r.excess_loss == pytest.approx(0.0025, rel=1e-12)
        # loss = floor + excess + (sampling noise of mean |v − v_c|² and of 2 b·(v − v_c))
        assert abs(r.model_loss - r.loss_floor - r.excess_loss) < 5 * r.model_loss_se
    assert result.induced.rmse > 0.01


def test_model_failures_are_reported_per_time_never_averaged():
    path = gaussian_path()

    def broken(t, x):
        v = exact_velocity(t, x)
        if np.any(np.isclose(t, 0.5)):
            v[3] = np.nan
        return v

    result = compare_velocity(broken, path, n=50, induced_flow=False)
    bad = result.at(0.5)
    assert bad.failure is not None and bad.failure.kind == "non-finite"
    assert bad.failure.rows == (3,) and bad.rmse is None
    assert [f.t for f in result.failures] == [0.5]
    assert result.at(0.4).rmse < 1e-12

    def wrong_shape(t, x):
        return x[:, :1]

    shaped = compare_velocity(wrong_shape, path, n=20, times=[0.5])
    assert shaped.at(0.5).failure.kind == "shape"
    assert shaped.induced.failure is not None

    def raises(t, x):
        raise RuntimeError("boom")

    failed = compare_velocity(raises, path, n=20, times=[0.2, 0.7])
    assert [f.kind for f in failed.failures] == ["exception", "exception", "exception"]
    assert "boom" in failed.failures[0].message


def test_bad_arguments_are_refused_by_name():
    path = gaussian_path()
    with pytest.raises(ValueError, match="parameterization must be one of velocity, x0"):
        compare_velocity(exact_velocity, path, parameterization="eps")
    with pytest.raises(ValueError, match="time_convention must be one of"):
        compare_velocity(exact_velocity, path, time_convention="reversed")
    with pytest.raises(ValueError, match=r"'x0' does not determine the velocity at t = 0"):
        compare_velocity(exact_denoiser, path, parameterization="x0", times=[0.0, 0.5])
    with pytest.raises(ValueError, match=r"'score' does not determine the velocity at t = 1"):
        compare_velocity(exact_score, path, parameterization="score", times=[1.0])
    with pytest.raises(ValueError, match=r"'score' does not determine the velocity at t = 0"):
        compare_velocity(lambda t, x: 0 * x, path, parameterization="score", times=[0.0])
    with pytest.raises(ValueError, match=r"'noise' does not determine the velocity near"):
        compare_velocity(exact_noise, path, parameterization="noise", times=[1 - 1e-16])
    with pytest.raises(ValueError, match=r"within 0.001 of\) t = 0"):
        compare_velocity(exact_score, path, parameterization="score", times=[1e-300])
    with pytest.raises(ValueError, match=r"times must lie in \[0, 1\]"):
        compare_velocity(exact_velocity, path, times=[0.5, 1.5])
    with pytest.raises(TypeError, match="path must be a MixturePath"):
        compare_velocity(exact_velocity, path.mixture)


def test_a_torch_module_is_compared_and_left_in_its_mode():
    torch = pytest.importorskip("torch")
    path = gaussian_path()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
            self.drop = torch.nn.Dropout(0.5)

        def forward(self, t, x):
            assert t.shape == (x.shape[0],)  # one time per row
            v = exact_velocity(t.detach().numpy(), x.detach().numpy())
            return self.drop(torch.as_tensor(v)) * self.scale

    net = Net().train()
    result = compare_velocity(net, path, n=100)
    assert net.training and result.ok
    assert max(r.rmse for r in result.per_time) < 1e-12  # dropout off: eval mode


def test_report_round_trips_through_json_and_renders(tmp_path):
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    result = compare_velocity(
        lambda t, x: 1.05 * path.velocity(t, x), path, n=200, times=[0.0, 0.5, 1.0]
    )
    back = VelocityComparison.from_json(result.to_json())
    assert back.to_dict() == json.loads(result.to_json())
    text = result.to_markdown()
    assert "| 0.5 |" in text and "Induced flow" in text
    written = result.plot(tmp_path)
    assert [p.name for p in written] == ["velocity_errors.png"] and written[0].stat().st_size > 0


def test_assert_velocity_matches_passes_exact_and_names_the_worst_time():
    from cmverify.testing import assert_velocity_matches

    path = gaussian_path()
    assert_velocity_matches(exact_noise, path, atol=1e-10, parameterization="noise", n=100)

    def off_at_late_times(t, x):
        return exact_velocity(t, x) + (np.asarray(t)[:, None] > 0.75) * np.array([0.2, 0.0])

    with pytest.raises(AssertionError) as info:
        assert_velocity_matches(off_at_late_times, path, atol=0.1, n=100)
    text = str(info.value)
    assert "t = 0.8: max |v_θ − v| = 0.2 > atol = 0.1" in text
    assert "t = 0.7" not in text and "worst at x_t = (" in text
    with pytest.raises(ValueError, match="metric must be"):
        assert_velocity_matches(exact_velocity, path, metric="mean")


def test_cli_compares_a_velocity_model_in_its_own_convention(tmp_path, capsys):
    from cmverify.cli import main

    model_file = tmp_path / "fm.py"
    model_file.write_text(
        "import cmverify as cmv\n"
        "PATH = cmv.MixturePath(cmv.mixtures.seed_bimodal())\n"
        "def net(tau, x):  # flow_matching's convention: time from noise to data\n"
        "    return -PATH.velocity(1.0 - tau, x)\n"
        "def broken(tau, x):\n"
        "    return x[:, :0]\n"
    )
    out = tmp_path / "report"
    args = ["compare", f"{model_file}:net", "--mixture", "seed_bimodal", "-n", "200"]
    velocity = ["--kind", "velocity", "--time-convention", "noise_at_0"]
    assert main([*args, *velocity, "--json", "--out", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["time_convention"] == "noise_at_0"
    assert max(r["rmse"] for r in payload["per_time"]) < 1e-12
    assert (out / "velocity_comparison.md").exists() and (out / "velocity_errors.png").exists()
    broken = ["compare", f"{model_file}:broken", "--mixture", "seed_bimodal", "-n", "50"]
    assert main([*broken, "--kind", "velocity"]) == 1
    capsys.readouterr()
    assert main([*args, "--kind", "velocity", "--atol", "0.1"]) == 2
    assert "apply to --kind consistency only" in capsys.readouterr().err
    assert main([*args, "--kind", "velocity", "--parameterization", "x0", "-n", "0"]) == 2


def test_beyond_the_floor_quadrature_the_report_says_so():
    """d = 5: no floor (its rules stop at d = 4), a note saying why, the excess loss still
    exact: a velocity off by the constant b has excess |b|² exactly. d = 4: the floor of a
    Gaussian, ``Σ_i λ_i / c_i`` (linear: ``W = 1``), to its default rtol 1e-6."""
    lam = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    for d in (4, 5):
        mixture = cmv.GaussianMixture([1.0], [np.zeros(d)], [np.diag(lam[:d])])
        path = cmv.MixturePath(mixture, cmv.Interpolant.linear())
        b = np.eye(d)[0] * 0.1
        result = compare_velocity(
            lambda t, x, path=path, b=b: path.velocity(t, x) + b,
            path,
            n=50,
            times=[0.5],
            induced_flow=False,
        )
        report = result.at(0.5)
        assert report.excess_loss == pytest.approx(0.01, rel=1e-12)
        if d == 4:
            floor = float(np.sum(lam[:4] / (0.25 * lam[:4] + 0.25)))
            assert report.loss_floor == pytest.approx(floor, rel=1e-6) and result.notes == []
            continue
        assert report.loss_floor is None
        assert result.notes == [
            "loss floor not computed: its quadrature reaches d ≤ 4, the path has d = 5 (the "
            "excess loss mean |v_θ − v|² is exact up to sampling)"
        ]
        text = result.to_markdown()
        assert "loss floor not computed" in text and "| — |" in text


def test_a_scalar_time_model_is_integrated_in_lockstep_and_its_calls_counted():
    """``time_format="scalar"``: the induced flow advances all rows with one time, so the
    network is called once per stage (12 per DOP853 step), and ``model_calls`` counts the
    network's calls."""
    path = gaussian_path()
    calls = []

    def scalar_velocity(t, x):
        assert np.ndim(t) == 0
        calls.append(float(t))
        return exact_velocity(t, x)

    result = compare_velocity(scalar_velocity, path, n=100, times=[0.5], time_format="scalar")
    assert result.ok and result.induced.rmse < 1e-6
    assert result.induced.model_calls == len(calls) - 1  # all but the t = 0.5 row's call
    assert result.induced.model_calls < 400
