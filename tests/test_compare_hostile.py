"""compare against hostile models (issue 10, items 3–6 and the compare figures of item 10).

Every test asserts a known or independently derived value: a model that misbehaves must
get a correct number or a reported failure, never a wrong number or a crash. The exact
model is the closed-form Gaussian flow map (independent of compare's ODE reference).
"""

import json
import math

import numpy as np
import pytest

import cmverify as cmv
from cmverify.cli import main
from cmverify.compare import compare
from cmverify.compare._reference import reference_set

torch = pytest.importorskip("torch")

MIX = cmv.mixtures.gaussian()  # d = 2, anisotropic
PATH = cmv.MixturePath(MIX, cmv.Interpolant.linear())
TIMES = (0.0, 0.5, 1.0)
N = 200
SCALE = math.sqrt(np.trace(MIX.covariance()))


def exact(t, x):
    """f*(t, x) = X_{t→0}(x) in closed form."""
    return cmv.gaussian_flow_map(MIX.means[0], MIX.covs[0], PATH.interpolant, x, t, 0.0)


def run(model, **kwargs):
    kwargs.setdefault("sample_quality", False)
    return compare(model, PATH, TIMES, n=N, **kwargs)


def assert_exact_model_still_scores_zero():
    result = run(exact)
    assert result.passed and not result.failures
    assert max(r.max_error for r in result.per_time) <= 1e-8


class Recorder:
    """Wraps a model and keeps a copy of the inputs it was given, per time."""

    def __init__(self, model):
        self.model, self.inputs = model, {}

    def __call__(self, t, x):
        self.inputs.setdefault(float(t), x.copy())
        return self.model(t, x)


# -- item 3: cached reference arrays --------------------------------------------------------


def test_a_model_editing_its_input_in_place_cannot_corrupt_later_comparisons():
    """Regression: the cached x_t were passed to the model itself; ``x -= 1`` shifted them
    for every later comparison (the exact model then scored an RMSE of order 1)."""

    def editing(t, x):
        x -= 1.0
        return exact(t, x + 1.0)

    first = run(editing, sample_quality=True, n_samples=100)
    assert first.passed and max(r.max_error for r in first.per_time) <= 1e-8
    assert first.boundary_max <= 1e-12
    assert_exact_model_still_scores_zero()


def test_cached_reference_arrays_are_read_only():
    ref = reference_set(PATH, (0.0, 0.5, 1.0), N, 0, 2000)
    arrays = [*ref.points, *ref.targets, *[p for p in ref.previous if p is not None]]
    arrays += [ref.data, ref.data_twin, ref.noise, ref.sampler_noise]
    assert all(not a.flags.writeable for a in arrays)
    with pytest.raises(ValueError, match="read-only"):
        ref.points[1][0, 0] = 0.0


def test_a_model_returning_its_own_input_is_scored_correctly():
    """The model overwrites its input with the answer and returns it (an alias)."""

    def aliasing(t, x):
        x[:] = exact(t, x)
        return x

    result = run(aliasing)
    assert result.passed and max(r.max_error for r in result.per_time) <= 1e-8
    assert_exact_model_still_scores_zero()


def test_a_model_reusing_one_output_buffer_gets_its_true_self_consistency():
    """Regression: the output at t aliased the model's buffer, so the call at s overwrote
    it and the self-consistency read 0. For ``f = f* + c(t)`` (c added to both coordinates)
    it is ``sqrt(2) |c(t) − c(s)|`` exactly (f*(t, x) = f*(s, X_{t→s}(x)))."""
    buffers = {}

    def c(t):
        return 0.2 * math.sin(7 * t)

    def reusing(t, x):
        buf = buffers.setdefault(x.shape, np.empty(x.shape))
        buf[:] = exact(t, x) + c(t)
        return buf

    result = run(reusing)
    for r in result.per_time[1:]:
        expected = math.sqrt(2) * abs(c(r.t) - c(r.self_consistency_s))
        assert r.self_consistency == pytest.approx(expected, rel=1e-6)


def test_a_model_editing_t_in_place_is_scored_correctly():
    seen = []

    def editing_t(t, x):
        seen.append(float(t[0]))
        assert np.all(t == t[0])  # a fresh, intact time vector on every call
        value = float(t[0])
        t[:] = -1.0
        return exact(value, x)

    result = run(editing_t, time_format="vector")
    assert result.passed and max(r.max_error for r in result.per_time) <= 1e-8
    assert set(seen) >= set(TIMES)


# -- item 5: outputs that are not plain float64 ---------------------------------------------


@pytest.mark.parametrize("kind", ["float16", "int64", "float32"])
def test_low_precision_and_integer_outputs_are_scored_exactly(kind):
    """float16 / int / float32 outputs are converted exactly: the RMSE is that of the
    rounded answer, computed here independently on the inputs the model saw."""
    recorder = Recorder(
        lambda t, x: (
            np.rint(exact(t, x)).astype(kind) if kind == "int64" else exact(t, x).astype(kind)
        )
    )
    result = run(recorder)
    assert result.passed
    for r in result.per_time:
        x = recorder.inputs[r.t]
        answer = recorder.model(r.t, x).astype(np.float64)
        expected = np.sqrt(np.mean(np.sum((answer - exact(r.t, x)) ** 2, axis=1)))
        assert expected > 0
        assert r.rmse == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_complex_output_is_a_reported_failure_with_rows_and_examples():
    """Regression: the imaginary part was dropped and the model scored ``ok``."""
    recorder = Recorder(lambda t, x: exact(t, x) + np.where(x[:, :1] > 0.8, 1e-3j, 0.0))
    result = run(recorder)
    assert not result.passed and not result.ok
    for r in result.per_time:
        f = r.failure
        assert f.kind == "complex" and r.rmse is None
        flagged = np.flatnonzero(recorder.inputs[r.t][:, 0] > 0.8)
        assert f.rows == tuple(flagged) and len(flagged) > 0
        assert all(e[0] > 0.8 for e in f.examples) and len(f.examples) == 3
    assert "complex" in result.to_markdown()
    # a complex dtype is refused even when every imaginary part is 0
    zero_imag = run(lambda t, x: exact(t, x).astype(complex))
    assert {r.failure.kind for r in zero_imag.per_time} == {"complex"}


def test_outputs_whose_error_overflows_are_reported_failures():
    """Regression: outputs of 1e300 gave RMSE inf and ``ok``."""
    result = run(lambda t, x: exact(t, x) * 1e300, sample_quality=True, n_samples=50)
    assert not result.passed
    assert {r.failure.kind for r in result.per_time} == {"non-finite error"}
    assert all(r.rmse is None for r in result.per_time)
    f = result.per_time[1].failure
    assert len(f.rows) == N and len(f.examples) == 3 and "e+300" in f.message
    assert all(s.failure is not None and s.energy_distance is None for s in result.samples)
    payload = json.loads(result.to_json())  # strict JSON: no inf / nan anywhere
    assert payload["passed"] is False
    json.loads(result.to_json(allow_nan=False))


def test_large_but_representable_errors_are_reported_without_overflow():
    """Each error is sqrt(2)·1e153 (finite) but their squares sum past float64's range:
    the RMSE is still the exact value, not inf."""
    result = run(lambda t, x: exact(t, x) + 1e153)
    assert result.passed
    for r in result.per_time:
        assert r.rmse == pytest.approx(math.sqrt(2) * 1e153, rel=1e-9)
        assert r.max_error == pytest.approx(math.sqrt(2) * 1e153, rel=1e-9)


def test_a_tensor_that_requires_grad_is_evaluated_without_gradients():
    """Regression: ``np.asarray`` on such a tensor raised outside the model call."""

    def returns_grad_tensor(t, x):
        weight = torch.ones(1, dtype=torch.float64, requires_grad=True)
        return torch.from_numpy(exact(t, x)) * weight

    result = run(returns_grad_tensor)
    assert result.passed and max(r.max_error for r in result.per_time) <= 1e-8


def test_shape_n_for_d_1_is_a_reported_failure_with_a_hint():
    path = cmv.MixturePath(cmv.mixtures.seed_bimodal(), cmv.Interpolant.linear())
    result = compare(
        lambda t, x: cmv.quantile_flow_map(path, x, t, 0.0)[:, 0],
        path,
        (0.5,),
        n=100,
        sample_quality=False,
    )
    assert {r.failure.kind for r in result.per_time} == {"shape"}
    assert "expected (100, 1)" in result.per_time[0].failure.message
    assert "(n, 1)" in result.per_time[0].failure.message


# -- item 4: torch modules ------------------------------------------------------------------

DIAG = cmv.mixtures.gaussian(mean=[0.5, -0.25], cov=[[0.5, 0.0], [0.0, 0.2]])
DIAG_PATH = cmv.MixturePath(DIAG, cmv.Interpolant.linear())


class OneStepBatchNorm(torch.nn.Module):
    """At t = 1 on a diagonal Gaussian, f*(1, x1) = μ + Σ^{1/2} x1: exactly a BatchNorm in
    eval mode with running mean 0, running variance 1 − eps, weight sqrt(diag Σ), bias μ.
    In training mode it would standardize by the batch instead (an error ~ n^{-1/2})."""

    def __init__(self, dtype):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(2, dtype=dtype)
        self.drop = torch.nn.Dropout(0.5)
        with torch.no_grad():
            self.bn.running_var.fill_(1 - self.bn.eps)
            self.bn.weight.copy_(torch.sqrt(torch.tensor([0.5, 0.2], dtype=dtype)))
            self.bn.bias.copy_(torch.tensor([0.5, -0.25], dtype=dtype))

    def forward(self, t, x):
        return self.drop(self.bn(x))


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_torch_modules_are_scored_in_eval_mode_and_left_as_they_were(dtype, tol):
    """Regression: modules were scored in training mode (batch statistics, dropout on) and
    their BatchNorm running statistics were overwritten."""
    model = OneStepBatchNorm(dtype)
    model.train()
    model.drop.eval()  # a mixed state, restored exactly
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = compare(model, DIAG_PATH, (1.0,), n=N, sample_quality=False)
    assert result.at(1.0).failure is None
    assert result.at(1.0).max_error <= tol * SCALE
    assert model.training and model.bn.training and not model.drop.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_module_that_raises_only_in_eval_mode_is_reported_and_its_mode_restored():
    class TrainOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))

        def forward(self, t, x):
            if not self.training:
                raise RuntimeError("forgot to handle eval mode")
            return self.scale * x

    model = TrainOnly()
    result = compare(model, PATH, TIMES, n=N, sample_quality=False)
    assert not result.passed
    f = result.per_time[0].failure
    assert f.kind == "exception" and "forgot to handle eval mode" in f.message
    assert "eval() mode" in f.message and "forward" in f.traceback
    assert model.training


def test_a_float64_module_editing_its_input_tensor_cannot_corrupt_the_reference():
    """Regression: ``torch.as_tensor`` shared memory with the cached float64 x_t, so a
    module zeroing its input in place zeroed the reference for every later comparison."""

    class Zeroing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))

        def forward(self, t, x):
            out = torch.from_numpy(exact(float(t[0]), x.numpy().copy()))
            x.zero_()
            return out

    result = run(Zeroing())
    assert result.passed and max(r.max_error for r in result.per_time) <= 1e-8
    assert_exact_model_still_scores_zero()


# -- item 6: thresholds ---------------------------------------------------------------------


def half_shifted(eps):
    """f* shifted by ``eps`` (a vector of norm eps) on the rows with x[0] > mean[0] at t > 0:
    at each t > 0, max error = eps and RMSE = eps · sqrt(fraction of shifted rows)."""
    shift = eps * np.array([0.6, 0.8])

    def model(t, x):
        out = exact(t, x)
        if t > 0:
            out[x[:, 0] > 0.5 * (1 - t)] += shift
        return out

    return Recorder(model)


def test_thresholds_bound_the_rmse_by_default_and_the_max_on_request():
    eps = 0.1
    recorder = half_shifted(eps)
    free = run(recorder)
    assert free.passed and free.threshold is None and not free.exceeded
    assert "no threshold applied" in free.verdict()
    rmse = {
        t: eps * math.sqrt(np.mean(x[:, 0] > 0.5 * (1 - t)))
        for t, x in recorder.inputs.items()
        if t > 0
    }
    for t, value in rmse.items():
        assert free.at(t).rmse == pytest.approx(value, rel=1e-6)
        assert free.at(t).max_error == pytest.approx(eps, rel=1e-6)
    between = 0.5 * (max(rmse.values()) + eps)  # above every RMSE, below the max error
    assert run(recorder, atol=between).passed
    by_max = run(recorder, atol=between, metric="max")
    assert not by_max.passed and not by_max.ok and not by_max.failures
    assert [e.t for e in by_max.exceeded] == [0.5, 1.0]
    assert by_max.exceeded[0].value == pytest.approx(eps, rel=1e-6)
    # rtol is relative to the data scale sqrt(tr Cov x0); atol and rtol add up
    assert run(recorder, rtol=1.01 * max(rmse.values()) / SCALE).passed
    tight = run(recorder, atol=0.01, rtol=0.5 * min(rmse.values()) / SCALE)
    assert tight.threshold.tolerance == pytest.approx(0.01 + 0.5 * min(rmse.values()))
    assert [e.t for e in tight.exceeded] == [0.5, 1.0]
    payload = json.loads(tight.to_json())
    assert payload["passed"] is False and payload["ok"] is False
    assert payload["threshold"]["metric"] == "rmse"
    assert payload["threshold"]["tolerance"] == pytest.approx(tight.threshold.tolerance)
    assert [e["t"] for e in payload["exceeded"]] == [0.5, 1.0]
    assert payload["verdict"].startswith("FAILED")
    markdown = tight.to_markdown()
    assert "FAILED" in markdown and "exceeds" in markdown and "atol 0.01" in markdown


def test_a_failed_call_fails_the_gate_even_within_the_threshold():
    result = run(lambda t, x: exact(t, x) if t < 1 else np.full_like(x, np.nan), atol=1.0)
    assert not result.passed and not result.exceeded and result.failures


@pytest.mark.parametrize("code", [0, 3])
def test_a_model_calling_sys_exit_is_a_reported_failure(code):
    """``sys.exit(0)`` inside the model had ended ``cmverify compare`` with status 0 and
    no report (found in review): a gate passed by a model that never answered."""

    def exits(t, x):
        if t == 0.5:
            raise SystemExit(code)
        return exact(t, x)

    result = run(exits)
    assert not result.passed
    assert any("SystemExit" in f.message for f in result.failures)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 0}, ValueError, "n must be at least 1"),
        ({"n": -3}, ValueError, "n must be at least 1, got -3"),
        ({"n": 2.5}, TypeError, "n must be an integer"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"atol": -0.1}, ValueError, "atol"),
        ({"rtol": float("nan")}, ValueError, "rtol"),
        ({"atol": True}, TypeError, "atol"),
        ({"metric": "mean"}, ValueError, "metric"),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        compare(exact, PATH, TIMES, **{"n": N, **kwargs})


def test_assert_matches_reference_reports_complex_output_and_honours_rtol():
    from cmverify.testing import assert_matches_reference

    with pytest.raises(AssertionError, match="complex"):
        assert_matches_reference(lambda t, x: exact(t, x) + 0j, PATH, atol=1.0, n=N, times=TIMES)
    recorder = half_shifted(0.1)  # max error 0.1 at t > 0
    assert_matches_reference(recorder, PATH, atol=0.0, rtol=0.11 / SCALE, n=N, times=TIMES)
    with pytest.raises(AssertionError, match=r"max \|f − f\*\| = 0.1 > atol \+ rtol"):
        assert_matches_reference(recorder, PATH, atol=0.0, rtol=0.09 / SCALE, n=N, times=TIMES)


def test_cli_exit_status_follows_the_threshold(tmp_path, capsys):
    model_file = tmp_path / "shifted.py"
    model_file.write_text(
        "import cmverify as cmv\n"
        "PATH = cmv.MixturePath(cmv.mixtures.seed_bimodal())\n"
        "def model(t, x):\n"
        "    return cmv.quantile_flow_map(PATH, x, t, 0.0) + (0.5 if t > 0 else 0.0)\n"
    )
    base = ["compare", f"{model_file}:model", "--mixture", "seed_bimodal", "-n", "60", "--json"]
    assert main(base) == 0  # no threshold: only the validity of the answers is checked
    free = json.loads(capsys.readouterr().out)
    assert free["threshold"] is None and free["passed"] is True
    assert main([*base, "--atol", "0.1"]) == 1
    gated = json.loads(capsys.readouterr().out)
    assert gated["passed"] is False and gated["threshold"]["atol"] == 0.1
    assert [e["t"] for e in gated["exceeded"]] == [r["t"] for r in gated["per_time"]][1:]
    assert all(e["value"] == pytest.approx(0.5, rel=1e-6) for e in gated["exceeded"])
    for bad, name in ((["--atol", "-1"], "atol"), (["--rtol", "nan"], "rtol"), (["-n", "0"], "n")):
        assert main([*base[:-3], *bad]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"cmverify compare: {name} must be")


# -- item 10: figures -----------------------------------------------------------------------


def test_figures_keep_exact_zeros_off_the_scale_titles_and_arrows_in_frame(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmverify.compare import _plots as _compare_plots

    long_name = "/a/rather/long/path/to/someone's/project/models/checkpoints/model_file.py:Model"
    shifted = half_shifted(0.1)

    def model(t, x):  # exactly f(0, x) = x: an error of exactly 0 at t = 0
        return x.copy() if t == 0 else shifted(t, x)

    result = compare(model, PATH, TIMES, n=N, n_samples=100, name=long_name, atol=0.02)
    assert result.at(0.0).max_error == 0.0
    written = result.plot(tmp_path)
    assert {p.name for p in written} == {"error_vs_t.png", "samples.png", "arrows.png"}

    fig = _compare_plots._error_figure(result, plt)
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low > 1e-4 and high >= 0.1  # the exact 0 at t = 0 does not stretch the axis
    assert ax.get_xlabel() and ax.get_ylabel()
    title = ax.title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.x1 and title.y1 <= fig.bbox.y1
    plt.close(fig)

    data = result.figure_data  # the arrows at the latest time, passed in explicitly
    assert data.arrow_time == 1.0 and data.path is PATH and len(data.arrow_points) == N
    np.testing.assert_array_equal(data.arrow_model, model(1.0, data.arrow_points.copy()))
    np.testing.assert_allclose(data.arrow_exact, exact(1.0, data.arrow_points), atol=1e-8)
    arrows = (data.arrow_points, data.arrow_model, data.arrow_exact)
    fig = _compare_plots._arrows_figure(result, PATH, 1.0, arrows, plt)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x, model_out, ref_out = (np.asarray(a[: _compare_plots.N_ARROWS]) for a in arrows)
    for ends in (x, model_out, ref_out):
        assert np.all((ends[:, 0] >= x0) & (ends[:, 0] <= x1))
        assert np.all((ends[:, 1] >= y0) & (ends[:, 1] <= y1))
    title = ax.title.get_window_extent()
    assert title.x0 >= 0 and title.x1 <= fig.bbox.x1
    plt.close(fig)
