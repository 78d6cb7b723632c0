"""compare: users' models against the exact flow map."""

import json

import numpy as np
import pytest
from scipy import stats

import cmverify as cmv
from cmverify.cli import main
from cmverify.compare import ModelAdapter, ModelError, compare, energy_distance

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
FLOW = cmv.ReferenceFlow(PATH)
TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)
N = 400


def exact(t, x):
    return FLOW.consistency(t, x)


@pytest.mark.parametrize("mixture", ["gaussian", "seed_bimodal"])
def test_exact_consistency_function_scores_at_most_1e_8(mixture):
    """The exact f*, computed independently of compare's reference (the Gaussian closed
    form; the 1-d quantile map), scores ≤ 1e-8 at every t, is self-consistent and keeps the
    boundary; its one-step samples hit the modes with the data's weights (χ² test,
    false-alarm rate 1e-6)."""
    path = cmv.MixturePath(cmv.mixtures.by_name(mixture), cmv.Interpolant.trig())
    mix = path.mixture

    def closed_form(t, x):
        if mixture == "gaussian":
            return cmv.gaussian_flow_map(mix.means[0], mix.covs[0], path.interpolant, x, t, 0.0)
        return cmv.quantile_flow_map(path, x, t, 0.0)

    result = compare(closed_form, path, TIMES, n=N, n_samples=500)
    assert result.ok
    for r in result.per_time:
        assert r.max_error <= 1e-8
        assert r.self_consistency is None or r.self_consistency <= 1e-8
    assert result.boundary_max <= 1e-12
    one_step = result.samples[0]
    if one_step.mode_frequencies is not None:
        counts = np.array(one_step.mode_frequencies) * 500
        assert stats.chisquare(counts, 500 * np.array(one_step.mode_weights)).pvalue > 1e-6


@pytest.mark.parametrize("eps", [1e-3, 0.05])
def test_a_bias_at_one_time_is_reported_with_its_size(eps):
    shift = eps * np.array([0.6, 0.8])

    def biased(t, x):
        return exact(t, x) + (shift if t == 0.5 else 0.0)

    result = compare(biased, PATH, TIMES, n=N, sample_quality=False)
    assert result.at(0.5).rmse == pytest.approx(eps, rel=0.05)
    assert result.at(0.25).rmse <= 1e-8 and result.at(0.75).rmse <= 1e-8


def test_x_t_signature_and_time_formats():
    def xt_model(x, t):
        assert t.shape == (x.shape[0], 1)
        return exact(t[0, 0], x)

    result = compare(
        xt_model, PATH, TIMES, n=N, signature="x,t", time_format="column", sample_quality=False
    )
    assert result.ok and max(r.max_error for r in result.per_time) <= 1e-8


def test_nan_inf_and_wrong_shape_are_reported_not_averaged():
    def nan_far_out(t, x):
        out = exact(t, x)
        out[np.linalg.norm(x, axis=1) > 2.5] = np.nan
        return out

    result = compare(nan_far_out, PATH, TIMES, n=N, sample_quality=False)
    assert not result.ok
    failed = [r for r in result.per_time if r.failure is not None]
    assert failed and all(r.rmse is None for r in failed)
    f = failed[0].failure
    assert f.kind == "non-finite" and len(f.rows) > 0
    assert all(np.linalg.norm(e) > 2.5 for e in f.examples)
    assert "NaN" in result.to_markdown()

    result = compare(lambda t, x: x[:, :1], PATH, TIMES, n=N, sample_quality=False)
    assert {r.failure.kind for r in result.per_time} == {"shape"}
    assert "expected (400, 2)" in result.per_time[0].failure.message


def test_a_model_that_raises_is_reported_with_its_traceback():
    def broken(t, x):
        if t > 0.6:
            raise RuntimeError("checkpoint not loaded")
        return exact(t, x)

    result = compare(broken, PATH, TIMES, n=N, sample_quality=False)
    failure = result.at(0.75).failure
    assert failure.kind == "exception" and "RuntimeError: checkpoint not loaded" in failure.message
    assert "broken" in failure.traceback
    assert result.at(0.25).failure is None
    payload = json.loads(result.to_json())
    assert payload["ok"] is False and payload["failures"]


def test_boundary_and_self_consistency_each_detected_alone():
    """A model that breaks only f(0, x) = x, and one that is self-consistent in no way
    but exact at t = 0."""

    def bad_boundary(t, x):
        return exact(t, x) + (0.1 if t == 0 else 0.0)

    r1 = compare(bad_boundary, PATH, TIMES, n=N, sample_quality=False)
    assert r1.boundary_max == pytest.approx(0.1 * np.sqrt(2))
    assert all(r.self_consistency <= 1e-8 for r in r1.per_time[2:])  # s > 0: unaffected

    def time_inconsistent(t, x):
        return exact(t, x) + 0.2 * np.sin(7 * t)

    r2 = compare(time_inconsistent, PATH, TIMES, n=N, sample_quality=False)
    assert r2.boundary_max == 0.0
    assert min(r.self_consistency for r in r2.per_time[1:]) > 0.01


def test_energy_distance_is_zero_for_identical_samples_and_positive_otherwise():
    x = np.random.default_rng(0).normal(size=(300, 2))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, x + 1.0) > 0.5


def test_torch_modules_float32_and_float64():
    torch = pytest.importorskip("torch")

    class Affine(torch.nn.Module):
        """The exact consistency function of a Gaussian: f*(t, x) = μ + C_t^{-1/2}-scaled x."""

        def __init__(self, mean, cov, dtype):
            super().__init__()
            self.mean = torch.nn.Parameter(torch.tensor(mean, dtype=dtype))
            self.register_buffer("cov", torch.tensor(cov, dtype=dtype))

        def forward(self, t, x):
            assert t.shape == (x.shape[0],)
            tt = t[:, None, None]
            c = (1 - tt) ** 2 * self.cov + tt**2 * torch.eye(x.shape[1], dtype=x.dtype)
            vals, vecs = torch.linalg.eigh(c)
            lam, u = torch.linalg.eigh(self.cov)
            root = u @ torch.diag(lam.sqrt()) @ u.T
            inv_sqrt = vecs @ torch.diag_embed(vals.rsqrt()) @ vecs.transpose(1, 2)
            y = (x - (1 - t)[:, None] * self.mean)[..., None]
            return self.mean + (root @ inv_sqrt @ y)[..., 0]

    mix = cmv.mixtures.gaussian()
    path = cmv.MixturePath(mix, cmv.Interpolant.linear())
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        model = Affine(mix.means[0], mix.covs[0], dtype)
        result = compare(model, path, (0.2, 0.6), n=200, sample_quality=False)
        assert result.ok and max(r.max_error for r in result.per_time) <= tol, dtype


def test_adapter_errors():
    with pytest.raises(TypeError, match="callable"):
        ModelAdapter(3)
    with pytest.raises(ValueError, match="signature"):
        ModelAdapter(exact, signature="t, y")
    with pytest.raises(ModelError, match="not numeric"):
        ModelAdapter(lambda t, x: "nope")(0.5, np.zeros((2, 2)))


def test_compare_cli(tmp_path, capsys):
    model_file = tmp_path / "mymodel.py"
    model_file.write_text(
        "import cmverify as cmv\n"
        "FLOW = cmv.ReferenceFlow(cmv.MixturePath(cmv.mixtures.seed_bimodal()))\n"
        "def model(t, x):\n    return FLOW.consistency(t, x)\n"
    )
    out = tmp_path / "report"
    code = main(
        [
            "compare",
            f"{model_file}:model",
            "--mixture",
            "seed_bimodal",
            "-n",
            "300",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["path"].startswith("seed_bimodal")
    assert (out / "comparison.md").exists() and (out / "error_vs_t.png").exists()
    assert main(["compare", "nofile.py:model"]) == 2


def test_compare_cli_loads_torch_checkpoints_safely(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.shift = torch.nn.Parameter(torch.zeros(1))\n"
        "    def forward(self, t, x):\n        return x + self.shift\n"
    )
    ckpt = tmp_path / "net.pt"
    torch.save({"shift": torch.tensor([0.25])}, ckpt)
    code = main(
        [
            "compare",
            f"{model_file}:Net",
            "--mixture",
            "seed_bimodal",
            "-n",
            "200",
            "--checkpoint",
            str(ckpt),
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    # The checkpoint's shift, not the initial 0: f(0, x) = x + 0.25 (d = 1), so the gap
    # |f(0, x) − x| is 0.25 at every data point, up to the float32 rounding of x + 0.25
    # (|x| ≤ 3 here: at most 2⁻²² absolute).
    assert code == 0
    assert payload["boundary_max"] == pytest.approx(0.25, abs=2**-21)
    assert payload["boundary_rms"] == pytest.approx(0.25, abs=2**-21)
    evil = tmp_path / "evil.pt"
    torch.save({"shift": torch.tensor([0.25]), "obj": object()}, evil)
    capsys.readouterr()
    assert main(["compare", f"{model_file}:Net", "--checkpoint", str(evil)]) == 2
    assert "eights only" in capsys.readouterr().err  # torch refused to unpickle the object
