"""The trainer's flow-map methods: MeanFlow's JVP target and loss, shortcut models' batch
and bootstrap, and short runs judged by the exact flow map."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cmverify as cmv  # noqa: E402
from cmverify.train import TrainConfig, train  # noqa: E402
from cmverify.train._flow_nets import MeanFlowNet, ShortcutNet  # noqa: E402
from cmverify.train._meanflow import (  # noqa: E402
    meanflow_loss,
    meanflow_tangents,
    meanflow_times,
)
from cmverify.train._shortcut import shortcut_batch, shortcut_loss  # noqa: E402

MEAN, SCALE = np.array([0.7, -1.2]), 1.3
GAUSSIAN = cmv.MixturePath(
    cmv.GaussianMixture([1.0], [MEAN], [SCALE**2 * np.eye(2)]), cmv.Interpolant.linear()
)


class ExactGaussianU(torch.nn.Module):
    """The exact average velocity of GAUSSIAN (linear interpolant), written in torch:
    ``X_{t→r}(z) = α_r m + (c_r/c_t)(z − α_t m)``, ``c_t = √(α_t² s² + σ_t²)``, and
    ``u = (z − X_{t→r}(z))/(t − r)`` — at ``r = t`` its limit ``v(t, z)``."""

    def forward(self, z, r, t):
        m = torch.as_tensor(MEAN, dtype=z.dtype)

        def c(s):
            return torch.sqrt((1 - s) ** 2 * SCALE**2 + s**2)

        def dc(s):
            return (-(1 - s) * SCALE**2 + s) / c(s)

        centred = z - (1 - t)[:, None] * m
        span = (t - r)[:, None]
        safe = torch.where(span > 0, span, torch.ones_like(span))
        end = (1 - r)[:, None] * m + (c(r) / c(t))[:, None] * centred
        v = -m + (dc(t) / c(t))[:, None] * centred
        return torch.where(span > 0, (z - end) / safe, v)


def test_the_exact_u_is_the_fixed_point_of_the_meanflow_target_with_the_exact_teacher():
    """With the exact tangent v the target v − (t − r)(∂_t u + ∇u v) of the exact u is u
    itself (the MeanFlow identity): the loss vanishes to rounding, in every row of a batch
    that mixes r = t and r < t; and the exact u equals the reference flow's."""
    rng = np.random.default_rng(0)
    r, t = meanflow_times(rng, 400, 0.5)
    assert 0.3 < np.mean(r < t) < 0.7 and np.all(r <= t)
    z, w = meanflow_tangents(GAUSSIAN, r, t, rng, GAUSSIAN.velocity)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    model = ExactGaussianU()
    loss, raw = meanflow_loss(model, as_t(z), as_t(r), as_t(t), as_t(w), p=0.0)
    assert raw < 1e-26 and float(loss) == pytest.approx(raw, abs=1e-30)
    span = r < t
    reference = cmv.ReferenceFlow(GAUSSIAN)
    i = int(np.flatnonzero(span)[0])
    end = reference.map(z[i : i + 1], t[i], r[i])
    u = model(as_t(z[i : i + 1]), as_t(r[i : i + 1]), as_t(t[i : i + 1])).numpy()
    np.testing.assert_allclose(z[i] - (t[i] - r[i]) * u[0], end[0], atol=1e-9)
    # with the conditional tangent v_c the target is noisy: its rows differ from u
    _, w_c = meanflow_tangents(GAUSSIAN, r, t, np.random.default_rng(0), None)
    _, raw_c = meanflow_loss(model, as_t(z), as_t(r), as_t(t), as_t(w_c), p=0.0)
    assert raw_c > 0.1


def test_meanflow_loss_equals_its_definition():
    """JVP target by central differences along (w, 0, 1); weights sg(1/(‖Δ‖² + ε)^p)."""
    torch.manual_seed(0)
    model = MeanFlowNet(2, width=16, depth=2, n_frequencies=3).double()
    rng = np.random.default_rng(1)
    r, t = meanflow_times(rng, 64, 0.5, law="nested")
    z, w = meanflow_tangents(cmv.MixturePath(cmv.mixtures.eight_gaussians()), r, t, rng, None)
    zt, rt, tt, wt = (torch.as_tensor(a) for a in (z, r, t, w))
    h = 1e-6
    with torch.no_grad():
        du = (model(zt + h * wt, rt, tt + h) - model(zt - h * wt, rt, tt - h)) / (2 * h)
        u = model(zt, rt, tt)
        sq = torch.sum((u - (wt - (tt - rt)[:, None] * du)) ** 2, dim=1)
    for p, eps in [(0.0, 1e-3), (0.5, 0.01), (1.0, 1e-3)]:
        loss, raw = meanflow_loss(model, zt, rt, tt, wt, p=p, eps=eps)
        expected = torch.mean(sq / (sq + eps) ** p)
        assert float(loss) == pytest.approx(float(expected), rel=1e-7)
        assert raw == pytest.approx(float(sq.mean()), rel=1e-7)
    loss.backward()  # the gradient flows through u (the JVP's primal), not the target
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_shortcut_batch_is_on_the_dyadic_grid_with_the_flow_matching_target():
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    d_min = 1.0 / 16
    for base in ("d_min", "zero"):
        rng = np.random.default_rng(2)
        batch = shortcut_batch(
            path, 4000, rng, d_min=d_min, base=base, fraction=0.25, exact=path.velocity
        )
        n_fm = int(batch["n_fm"])
        assert n_fm == 3000
        x, tau, d = batch["x"], batch["tau"], batch["d"]
        # flow-matching rows: the exact teacher's -v at t = 1 - τ
        np.testing.assert_allclose(
            batch["fm_target"], -path.velocity(1.0 - tau[:n_fm], x[:n_fm]), rtol=1e-13
        )
        boot = d[n_fm:]
        levels = -np.log2(boot)
        assert np.all(levels == np.round(levels))
        smallest = 2 * d_min if base == "d_min" else d_min
        assert boot.min() == smallest and boot.max() == 1.0
        assert np.all(np.abs(tau[n_fm:] / boot - np.round(tau[n_fm:] / boot)) < 1e-12)
        np.testing.assert_array_equal(batch["h"], boot / 2)
        expect_q = np.where(boot / 2 >= d_min, boot / 2, 0.0)
        np.testing.assert_array_equal(batch["q"], expect_q)
        if base == "d_min":
            assert np.all(d[:n_fm] == d_min)
            assert np.all(np.abs(tau[:n_fm] / d_min - np.round(tau[:n_fm] / d_min)) < 1e-12)
        else:
            assert np.all(d[:n_fm] == 0) and len(np.unique(tau[:n_fm])) == n_fm


def test_shortcut_loss_equals_its_definition_and_uses_the_target_network():
    torch.manual_seed(1)
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    model = ShortcutNet(2, 1.0 / 8, width=16, depth=2).double()
    target = ShortcutNet(2, 1.0 / 8, width=16, depth=2).double()
    batch = shortcut_batch(
        path, 64, np.random.default_rng(3), d_min=1 / 8, base="d_min", fraction=0.5, exact=None
    )
    x, tau, d, h, q = (torch.as_tensor(batch[k]) for k in ("x", "tau", "d", "h", "q"))
    n = int(batch["n_fm"])
    with torch.no_grad():
        s1 = target(x[n:], tau[n:], q)
        s2 = target(x[n:] + h[:, None] * s1, tau[n:] + h, q)
        goal = torch.cat([torch.as_tensor(batch["fm_target"]), (s1 + s2) / 2])
        expected = torch.mean(torch.sum((model(x, tau, d) - goal) ** 2, dim=1))
    loss = shortcut_loss(model, target, batch)
    assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    loss.backward()
    assert all(p.grad is None for p in target.parameters())


@pytest.mark.parametrize("method", ["meanflow", "shortcut"])
def test_a_short_flow_map_run_lowers_its_exact_error(method):
    torch.set_num_threads(1)
    config = TrainConfig(
        method=method, steps=600, batch=256, eval_every=200, eval_points=300, eval_ema=0.9
    )
    lines = []
    result = train(config, progress=lines.append)
    first, last = result.history[0], result.history[-1]
    # measured (EMA 0.9, 600 steps of 256; evaluations at 200, 400, 600): shortcut one-step
    # 0.343 -> 0.224 -> 0.219; MeanFlow 2-step 0.410 -> 0.245 -> 0.235, while its one-step
    # (integrated along r = 0 from the flow-matching rows) still sits at 0.65 this early
    key = "two_step_rel_rmse" if method == "meanflow" else "one_step_rel_rmse"
    assert last[key] < 0.8 * first[key]
    for key in ("two_step_rel_rmse", "four_step_rel_rmse", "half_rel_rmse", "energy_distance"):
        assert all(np.isfinite(h[key]) for h in result.history)
    # the whole pair grid only at the final evaluation
    assert "flow_map_rel_rmse" in last and "flow_map_rel_rmse" not in first
    assert np.isfinite(result.metrics["flow_map_rel_rmse"])
    assert type(result.comparison).__name__ == "FlowMapComparison"
    evaluations = [line for line in lines if line.startswith("step ") and "2-step" in line]
    assert len(evaluations) == 3
    jvp_lines = [line for line in lines if "JVP" in line]
    if method == "meanflow":
        assert len(jvp_lines) == 3 and "float32 target off float64" in jvp_lines[-1]
        assert 0 < result.metrics["jvp"]["target_float32"] < 1e-4
    else:
        assert not jvp_lines and "jvp" not in result.metrics


def test_flow_map_runs_are_deterministic_and_the_exact_teacher_changes_them():
    torch.set_num_threads(1)
    base = dict(method="meanflow", steps=30, batch=64, eval_every=30, eval_points=50)
    a, b = (train(TrainConfig(**base)) for _ in range(2))
    assert a.losses == b.losses
    c = train(TrainConfig(**base, teacher="exact"))
    assert c.losses != a.losses


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "flow"}, "method must be one of ct, cd, meanflow, shortcut"),
        ({"teacher": "oracle"}, "teacher"),
        ({"mf_ratio": 1.5}, "mf_ratio"),
        ({"sc_bootstrap_fraction": -0.1}, "sc_bootstrap_fraction"),
        ({"mf_time_std": 0.0}, "mf_time_std"),
        ({"adaptive_p": -1.0}, "adaptive_p"),
        ({"adaptive_eps": 0.0}, "adaptive_eps"),
        ({"sc_d_min": 0.3}, "sc_d_min must be 2^-K"),
        ({"sc_d_min": 1.0}, "sc_d_min must be 2^-K"),
        ({"sc_d_min": 0.5}, "at most 1/4"),
        ({"sc_d_min": 5e-324}, "sc_d_min must be 2^-K"),
        ({"sc_bootstrap_fraction": 1.0}, "without flow-matching rows"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"lr": -1.0}, "lr must lie in"),
        ({"seed": -1}, "seed must be non-negative"),
        ({"seed": 2**63}, "seed must be below 2"),
        ({"steps": float("inf")}, None),
        ({"sc_base": "one"}, "sc_base"),
        ({"frequencies": 0}, "frequencies"),
        ({"frequencies": True}, "frequencies"),
    ],
)
def test_bad_flow_map_configuration(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message and message.replace("^", r"\^")):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"steps": 1.5}, "steps must be an integer"),
        ({"batch": 2.0}, "batch must be an integer"),
        ({"frequencies": 4.5}, "frequencies must be an integer"),
        ({"width": True}, "width must be an integer"),
        ({"lr": "0.001"}, "lr must be a real number"),
        ({"inverse_dt": 1}, "inverse_dt must be True or False"),
        ({"teacher": 3}, "teacher must be a string"),
    ],
)
def test_fields_of_the_wrong_type_are_refused(kwargs, name):
    with pytest.raises(TypeError, match=name):
        TrainConfig(**kwargs)


def test_a_network_of_the_wrong_signature_or_shape_is_refused_before_training(tmp_path):
    class Scalar(torch.nn.Module):  # (n, 1): would broadcast against the (n, 2) target
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, z, r, t):
            return self.lin(z)

    config = TrainConfig(method="meanflow", steps=5, batch=16, eval_points=50)
    with pytest.raises(ValueError, match=r"must return torch.float32 of shape \(n, 2\), got"):
        train(config, network=Scalar(), checkpoint_dir=tmp_path / "a")
    with pytest.raises(ValueError, match=r"must be s\(x, tau, d\).*calling it failed"):
        train(TrainConfig(method="shortcut", steps=5), network=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no parameters"):
        train(TrainConfig(method="shortcut", steps=5), network=torch.nn.Identity())


def test_a_float64_meanflow_network_trains_and_a_diverging_run_stops():
    torch.set_num_threads(1)
    net = MeanFlowNet(2, width=16, depth=1).double()
    result = train(
        TrainConfig(method="meanflow", steps=20, batch=32, eval_every=20, eval_points=50),
        network=net,
    )
    assert np.isfinite(result.losses).all()

    class Diverging(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.calls = 0

        def forward(self, x, tau, d):
            self.calls += 1
            return self.lin(x) * (float("nan") if self.calls > 3 else 1.0)

    with pytest.raises(FloatingPointError, match=r"the training loss is nan at step \d+"):
        train(TrainConfig(method="shortcut", steps=10, batch=16), network=Diverging())


def test_the_exact_teacher_is_refused_for_ct_and_cd():
    with pytest.raises(ValueError, match="teacher='exact' is for meanflow and shortcut"):
        TrainConfig(method="ct", teacher="exact")


def test_the_cli_offers_every_method(capsys):
    from cmverify.cli import main
    from cmverify.train._config import METHODS

    with pytest.raises(SystemExit):
        main(["train", "--method", "bogus"])
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err
    listed = err.split("choose from", 1)[1]
    assert [m for m in METHODS if f"'{m}'" in listed or f" {m}" in listed] == list(METHODS)


def test_a_teacher_velocity_that_would_be_ignored_is_refused(tmp_path):
    def velocity(t, x):
        return np.zeros_like(x)

    for method in ("ct", "meanflow", "shortcut"):
        with pytest.raises(ValueError, match="would ignore it"):
            train(
                TrainConfig(method=method, steps=1),
                velocity=velocity,
                checkpoint_dir=tmp_path / method,
            )
        assert not (tmp_path / method).exists()  # refused before the folder is made


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_meanflow_net_tangent_by_hand_is_torch_func_jvp(dtype):
    """MeanFlowNet.forward_and_tangent (forward-mode rules written out, 3x faster) gives
    torch.func.jvp's numbers, and a run with it the same losses as a run without."""
    torch.manual_seed(2)
    net = MeanFlowNet(2, width=32, depth=3).to(dtype)
    z, w = torch.randn(64, 2, dtype=dtype), torch.randn(64, 2, dtype=dtype)
    r = torch.rand(64, dtype=dtype) * 0.5
    t = r + 0.4
    u, du = torch.func.jvp(net, (z, r, t), (w, torch.zeros_like(r), torch.ones_like(t)))
    u2, du2 = net.forward_and_tangent(z, r, t, w)
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(u2, u, rtol=tol, atol=tol)
    torch.testing.assert_close(du2, du, rtol=tol, atol=tol)
    assert u2.requires_grad and not du2.requires_grad

    class Generic(MeanFlowNet):
        forward_and_tangent = None  # the torch.func.jvp route

    config = TrainConfig(method="meanflow", steps=30, batch=64, eval_every=30, eval_points=50)
    torch.manual_seed(config.seed)
    fast = train(config, network=MeanFlowNet(2))
    torch.manual_seed(config.seed)
    generic = train(config, network=Generic(2))
    np.testing.assert_allclose(fast.losses, generic.losses, rtol=1e-5)


def test_replace_takes_the_new_methods_defaults_and_numpy_scalars_become_python():
    import dataclasses

    shortcut = TrainConfig(method="shortcut")
    assert shortcut.target_mu is None and shortcut.resolved().target_mu == 0.0
    ct = dataclasses.replace(shortcut, method="ct").resolved()
    assert ct.target_mu == 0.95 and ct.frequencies == 8
    assert (
        dataclasses.replace(TrainConfig(method="meanflow"), method="shortcut")
        .resolved()
        .frequencies
        == 8
    )
    config = TrainConfig(
        method="meanflow", frequencies=np.int64(4), lr=np.float32(1e-3), steps=np.int64(3)
    )
    assert (
        type(config.frequencies) is int and type(config.lr) is float and type(config.steps) is int
    )
    for bad, message in [
        ({"distance": "foo"}, "distance"),
        ({"cd_solver": "rk9"}, "cd_solver"),
        ({"p_std": 0.0}, "p_std"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)


def test_a_subclass_that_changes_forward_takes_the_generic_jvp():
    from cmverify.train._meanflow import _own_forward

    class Doubled(MeanFlowNet):
        def forward(self, z, r, t):
            return 2 * super().forward(z, r, t)

    assert _own_forward(MeanFlowNet(2)) and not _own_forward(Doubled(2))
    torch.manual_seed(0)
    net = Doubled(2, width=8, depth=1).double()
    z, w = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    r = torch.rand(16, dtype=torch.float64) * 0.5
    t = r + 0.3
    _, du = torch.func.jvp(net, (z, r, t), (w, torch.zeros_like(r), torch.ones_like(t)))
    _, raw = meanflow_loss(net, z, r, t, w, p=0.0)
    with torch.no_grad():
        expected = torch.sum((net(z, r, t) - (w - (t - r)[:, None] * du)) ** 2, dim=1).mean()
    assert raw == pytest.approx(float(expected), rel=1e-12)


def test_a_saved_shortcut_network_keeps_its_d_min(tmp_path):
    net = ShortcutNet(2, 1.0 / 128, width=8, depth=1)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    other = ShortcutNet(2, 1.0 / 64, width=8, depth=1)
    other.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert other.levels == 8
    x, tau, d = torch.randn(5, 2), torch.rand(5), torch.full((5,), 1.0 / 128)
    torch.testing.assert_close(other(x, tau, d), net(x, tau, d))


def test_a_network_returning_nan_is_named_at_once():
    class Nan(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x, tau, d):
            return self.lin(x) * float("nan")

    with pytest.raises(ValueError, match="returns NaN or inf at its first call"):
        train(TrainConfig(method="shortcut", steps=3), network=Nan())


def test_networks_that_mutate_their_input_do_not_change_the_shortcut_loss():
    """The bootstrap target is computed before the model's own call on the same x: a target
    network that writes into its input must not change what the model sees."""

    class Mutating(ShortcutNet):
        def forward(self, x, tau, d):
            out = super().forward(x, tau, d)
            x.add_(1.0)
            tau.mul_(0.0)
            return out

    torch.manual_seed(4)
    clean = ShortcutNet(2, 1.0 / 8, width=16, depth=2).double()
    mutating = Mutating(2, 1.0 / 8, width=16, depth=2).double()
    mutating.load_state_dict(clean.state_dict())
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    batch = shortcut_batch(
        path, 64, np.random.default_rng(5), d_min=1 / 8, base="d_min", fraction=0.5, exact=None
    )
    expected = shortcut_loss(clean, clean, batch)
    assert float(shortcut_loss(clean, mutating, batch)) == float(expected)


def test_the_probe_leaves_the_network_as_it_was():
    """The probe before training calls a copy in eval mode: BatchNorm statistics, the
    training flag and the weights of the user's network are untouched."""
    from cmverify.train._setup import probe

    class WithNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.BatchNorm1d(2)
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, x, tau, d):
            return self.lin(self.norm(x + 5.0))

    net = WithNorm()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    probe(TrainConfig(method="shortcut").resolved(), net, None, 2)
    assert net.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
