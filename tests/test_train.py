"""The compact trainer: parameterization, losses, determinism, configuration errors."""

import json
import os
import signal
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cmverify as cmv  # noqa: E402
from cmverify.claims import multistep  # noqa: E402
from cmverify.compare import Comparison, compare  # noqa: E402
from cmverify.train import ConsistencyModel, TrainConfig, train  # noqa: E402
from cmverify.train._losses import cd_pairs, consistency_loss, ct_pairs, distance  # noqa: E402
from cmverify.train._trainer import sample  # noqa: E402

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "interp", [cmv.Interpolant.linear(), cmv.Interpolant.trig()], ids=lambda i: i.name
)
def test_boundary_condition_is_exact_for_random_weights(dtype, interp):
    """PARAM-BOUNDARY: c_skip(0) = 1 and c_out(0) = 0 exactly, so f(0, x) = x bit for bit."""
    torch.manual_seed(3)
    model = ConsistencyModel(interp, 2, sigma_data=1.4).to(dtype)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=3.0)
    x = torch.randn(500, 2, dtype=dtype) * 5
    out = model(torch.zeros(500, dtype=dtype), x)
    assert torch.equal(out, x)
    assert not torch.equal(model(torch.full((500,), 0.5, dtype=dtype), x), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sigma_data", [2e-154, 1e-3, 1e3, 1.3e154])
def test_boundary_condition_is_exact_at_extreme_data_scales(dtype, sigma_data):
    """f(0, x) = x bit for bit over the whole accepted range of σ_d (σ_d² a normal float);
    at t = 1 (α = 0) c_skip = 0 and c_out = σ_d (the closed form σ σ_d / √(α² σ_d² + σ²))
    up to the two roundings of 1/√(1/σ_d²), with no overflow or underflow of σ_d²."""
    from cmverify.train import boundary_scalings

    model = ConsistencyModel(cmv.Interpolant.linear(), 2, sigma_data=sigma_data).to(dtype)
    x = torch.randn(100, 2, dtype=dtype)
    assert torch.equal(model(torch.zeros(100, dtype=dtype), x), x)
    c_skip, c_out = boundary_scalings(cmv.Interpolant.linear(), np.array([0.0, 1.0]), sigma_data)
    assert c_skip.tolist() == [1.0, 0.0] and c_out[0] == 0.0
    assert c_out[1] == pytest.approx(sigma_data, rel=4e-16)


@pytest.mark.parametrize(
    ("sigma_data", "error", "message"),
    [
        (0.0, ValueError, r"sigma_data must lie in \[1.492e-154, 1.341e\+154\].*got 0.0"),
        (-1.4, ValueError, "sigma_data must lie in .*got -1.4"),
        (float("nan"), ValueError, "sigma_data must lie in .*got nan"),
        (float("inf"), ValueError, "sigma_data must lie in .*got inf"),
        (
            1e-160,
            ValueError,
            "sigma_data must lie in .*got 1e-160",
        ),  # σ_d² underflows: 0/0 at t = 0
        (1e160, ValueError, "sigma_data must lie in .*got 1e\\+160"),
        ("1.4", TypeError, "sigma_data must be a real number, got str"),
        (True, TypeError, "sigma_data must be a real number, got bool"),
    ],
)
def test_bad_sigma_data_is_refused(sigma_data, error, message):
    """Before: σ_d = 0 was accepted and f(0, x) was 0/0 = NaN for every x."""
    from cmverify.train import boundary_scalings

    with pytest.raises(error, match=message):
        ConsistencyModel(cmv.Interpolant.linear(), 2, sigma_data=sigma_data)
    with pytest.raises(error, match=message):
        boundary_scalings(cmv.Interpolant.linear(), np.zeros(3), sigma_data)


def test_losses_equal_their_definitions():
    """CT pairs share (x0, x1); CD takes one Euler step of the exact velocity; the loss is
    the mean (weighted) distance between the online and the target outputs."""
    x0 = np.array([[1.0, 2.0], [-1.0, 0.5]])
    x1 = np.array([[0.3, -0.2], [1.0, 1.0]])
    t_lo, t_hi = np.array([0.25, 0.5]), np.array([0.5, 0.75])
    hi, lo = ct_pairs(PATH, t_lo, t_hi, x0, x1)
    np.testing.assert_allclose(hi, (1 - t_hi)[:, None] * x0 + t_hi[:, None] * x1)
    np.testing.assert_allclose(lo, (1 - t_lo)[:, None] * x0 + t_lo[:, None] * x1)
    hi2, euler = cd_pairs(PATH, t_lo, t_hi, x0, x1)
    np.testing.assert_allclose(hi2, hi)
    np.testing.assert_allclose(euler, hi - 0.25 * PATH.velocity(t_hi, hi))

    class Shift(torch.nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = torch.nn.Parameter(torch.tensor(c, dtype=torch.float64))

        def forward(self, t, x):
            return x + self.c * t[:, None]

    online, target = Shift(1.0), Shift(2.0)
    value = consistency_loss(online, target, t_lo, t_hi, hi, lo, kind="l2", inverse_dt=True)
    expected = np.mean(np.sum((hi + t_hi[:, None] - lo - 2 * t_lo[:, None]) ** 2, axis=1) / 0.25)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-12)
    a, b = torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2)
    assert float(distance(a, b, "huber", 1.0)) == pytest.approx(np.sqrt(26) - 1)


def test_multistep_sampler_with_the_exact_map_reproduces_p_t():
    """MULTISTEP (the claim's measurement) passes with f*, through the trainer's sampler."""
    path = cmv.MixturePath(cmv.mixtures.seed_bimodal())
    assert all(c.passed for c in multistep(path, n=2000))
    flow = cmv.ReferenceFlow(path)

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def forward(self, t, x):
            return torch.as_tensor(flow.consistency(t.numpy(), x.numpy()))

    x = sample(Exact(), path, 3000, steps=3, seed=1)
    from scipy import stats

    from cmverify.reference import mixture_log_cdf

    p = stats.kstest(x[:, 0], lambda z: np.exp(mixture_log_cdf(path.mixture, z))).pvalue
    assert p > 1e-3


def test_a_few_hundred_steps_lower_loss_and_reference_error():
    torch.set_num_threads(1)
    config = TrainConfig(
        method="cd",
        steps=300,
        batch=256,
        eval_every=50,
        eval_points=500,
        n_min=16,
        n_max=16,
        eval_ema=0.9,
    )
    torch.manual_seed(config.seed)
    untrained = ConsistencyModel(cmv.Interpolant.linear(), 2, sigma_data=1.43)
    before = (
        compare(untrained, PATH, (1.0,), n=500, seed=1, sample_quality=False).at(1.0).relative_rmse
    )
    result = train(config)
    assert result.metrics["one_step_rel_rmse"] < 0.7 * before
    # Measured with these settings: relative RMSE 1.00 → 0.37, mean loss of the first 50
    # steps 0.66 → last 50 steps 0.56 (the target moves with the model, so the CD loss
    # falls slowly; the reference error is what must fall).
    assert np.mean(result.losses[-50:]) < 0.9 * np.mean(result.losses[:50])


def test_training_is_deterministic():
    torch.set_num_threads(1)
    config = TrainConfig(method="ct", steps=40, batch=64, eval_every=40, eval_points=100)
    a, b = train(config).model.state_dict(), train(config).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_min": 0}, "n_min"),
        ({"target_mu": -0.1}, "μ"),
        ({"mixture": "nine_gaussians"}, "unknown mixture"),
        ({"method": "gan"}, "method"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_custom_network_and_teacher_velocity_are_used():
    torch.set_num_threads(1)
    calls = []

    def teacher(t, x):
        calls.append(len(x))
        return PATH.velocity(t, x)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, t, x):
            return self.lin(torch.cat([x, t[:, None]], dim=1))

    net = Net()
    config = TrainConfig(method="cd", steps=5, batch=32, eval_every=5, eval_points=50)
    result = train(config, network=net, velocity=teacher)
    assert result.model.network is not net  # the evaluation EMA is a copy …
    assert isinstance(result.model.network, Net)  # … of the network given
    assert calls and calls[0] == 32


# --- threads, checkpoints, interrupts, progress -----------------------------------------

TINY = {"method": "cd", "batch": 32, "width": 16, "depth": 1, "eval_points": 50}


def _interrupt_at(step, calls=None):
    """A CD teacher velocity (the exact one) that raises KeyboardInterrupt at its
    ``step``-th call: the Euler teacher is called once per training step."""
    count = [0]

    def teacher(t, x):
        count[0] += 1
        if calls is not None:
            calls.append(torch.get_num_threads())
        if count[0] == step:
            raise KeyboardInterrupt
        return PATH.velocity(t, x)

    return teacher


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_checkpoint_at_every_evaluation_and_an_interrupt_keeps_the_last(tmp_path):
    """Interrupted in step 25 of 30 with evaluations every 10 steps: TrainingInterrupted
    (a KeyboardInterrupt) says 24 steps were done and step 20 was saved, and the files
    hold exactly the model an uninterrupted run had at step 20."""
    from cmverify.train import TrainingInterrupted

    config = TrainConfig(steps=30, eval_every=10, **TINY)
    full, interrupted = tmp_path / "full", tmp_path / "interrupted"
    copies = {}

    def keep_step_20(line):  # the progress line of an evaluation follows its checkpoint
        if line.startswith("step 20/30"):
            copies["model"] = _state(full / "model.pt")

    result = train(config, progress=keep_step_20, checkpoint_dir=full, threads=1)
    assert [h["step"] for h in result.history] == [10, 20, 30]
    with pytest.raises(KeyboardInterrupt) as caught:
        train(config, velocity=_interrupt_at(25), checkpoint_dir=interrupted, threads=1)
    stop = caught.value
    assert isinstance(stop, TrainingInterrupted)
    assert (stop.step, stop.steps, stop.saved_step) == (24, 30, 20)
    assert stop.checkpoint_dir == interrupted
    assert "interrupted at step 24/30" in str(stop) and "model of step 20" in str(stop)
    assert str(interrupted) in str(stop) and "\n" not in str(stop)
    saved = _state(interrupted / "model.pt")
    assert saved.keys() == copies["model"].keys()
    assert all(torch.equal(saved[k], copies["model"][k]) for k in saved)
    metrics = json.loads((interrupted / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["step"] == 20
    assert [h["step"] for h in metrics["history"]] == [10, 20]
    assert metrics["history"] == json.loads(json.dumps(result.history[:2]))
    assert json.loads((interrupted / "config.json").read_text())["eval_every"] == 10
    final = json.loads((full / "metrics.json").read_text())
    assert final["complete"] is True and final["step"] == 30
    assert final["one_step_rel_rmse"] == result.metrics["one_step_rel_rmse"]
    final_state = _state(full / "model.pt")
    assert all(torch.equal(final_state[k], v) for k, v in result.model.state_dict().items())
    # the completed run also saved its final evaluation's report (Comparison.save)
    report = [p.name for p in result.report_files]
    assert report[:2] == ["comparison.json", "comparison.md"]
    assert all(p.parent == full and p.exists() for p in result.report_files)
    saved = Comparison.from_json((full / "comparison.json").read_text())
    assert saved.at(1.0).relative_rmse == final["one_step_rel_rmse"]
    assert saved.samples[1].energy_distance == final["two_step_energy_distance"]
    assert not (interrupted / "comparison.json").exists()  # only a completed run has one
    assert not [p.name for p in tmp_path.rglob(".*")]  # no temporary file left behind


def test_a_failing_final_evaluation_keeps_its_comparison_and_saves_it(tmp_path):
    """Regression: when the evaluated model failed, the trainer dropped the Comparison
    (TrainResult.comparison was None), losing which call failed and why."""

    class Broken(torch.nn.Module):
        armed = False  # set by the first training step's teacher call (after the probe)

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, t, x):  # NaN in the evaluation (eval mode, armed), finite in training
            broken = Broken.armed and not self.training
            return self.w * torch.full_like(x, float("nan") if broken else 0.0)

    def teacher(t, x):
        Broken.armed = True
        return PATH.velocity(t, x)

    config = TrainConfig(steps=2, eval_every=2, **TINY)
    result = train(config, network=Broken(), velocity=teacher, checkpoint_dir=tmp_path)
    assert result.metrics["failed"] and "one_step_rel_rmse" not in result.metrics
    assert result.comparison is not None and not result.comparison.passed
    assert result.comparison.failures[0].kind == "non-finite"
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert saved["passed"] is False
    assert [f["kind"] for f in saved["failures"]] == [f.kind for f in result.comparison.failures]


def test_an_interrupt_before_the_first_checkpoint_says_nothing_was_saved(tmp_path):
    from cmverify.train import TrainingInterrupted

    config = TrainConfig(steps=30, eval_every=10, **TINY)
    with pytest.raises(TrainingInterrupted) as caught:
        train(config, velocity=_interrupt_at(5), checkpoint_dir=tmp_path / "run")
    assert caught.value.saved_step is None and caught.value.step == 4
    assert "nothing saved" in str(caught.value)
    assert list((tmp_path / "run").iterdir()) == []
    with pytest.raises(TrainingInterrupted, match="no checkpoint folder"):
        train(config, velocity=_interrupt_at(5))


def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls = []
    config = TrainConfig(steps=5, eval_every=5, **TINY)
    for bad in (blocker, blocker / "sub", ""):
        with pytest.raises(ValueError, match="checkpoint_dir"):
            train(config, velocity=_interrupt_at(0, calls), checkpoint_dir=bad)
    assert calls == []  # not one training step was taken


def test_a_failed_checkpoint_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    """Atomic writes: a failure while writing step 20's checkpoint leaves step 10's files
    complete and no temporary files."""
    from cmverify.train import _checkpoint as checkpoint

    config = TrainConfig(steps=30, eval_every=10, **TINY)
    real_save, saves = torch.save, []

    def failing_second_save(obj, f, *args, **kwargs):
        saves.append(f)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", failing_second_save)
    with pytest.raises(OSError, match="No space"):
        train(config, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metrics.json", "model.pt"]
    assert json.loads((tmp_path / "metrics.json").read_text())["step"] == 10
    _state(tmp_path / "model.pt")  # loads


def test_threads_are_limited_during_training_and_restored(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    inside = []

    def teacher(t, x):
        inside.append((torch.get_num_threads(), blas_threads()))
        return PATH.velocity(t, x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(2, user_api="blas"):
            config = TrainConfig(steps=3, eval_every=3, **TINY)
            train(config, velocity=teacher, threads=1)
            assert inside == [(1, {1})] * 3
            assert torch.get_num_threads() == 2 and blas_threads() == {2}
            inside.clear()
            train(config, velocity=teacher)  # threads=None: the process's settings
            assert inside == [(2, {2})] * 3
    finally:
        torch.set_num_threads(before)


def test_limit_threads_nests_refreshes_and_validates(monkeypatch):
    import sys

    from cmverify._threads import limit_threads, refresh_limits

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with limit_threads(2):
            assert torch.get_num_threads() == 2
            with limit_threads(1):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 2
            with limit_threads(None):
                assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 3
        # torch imported inside the block (as by a user's model file): refresh_limits
        monkeypatch.delitem(sys.modules, "torch")
        with limit_threads(1):
            monkeypatch.setitem(sys.modules, "torch", torch)
            assert torch.get_num_threads() == 3
            refresh_limits()
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        # … or by the code of a nested context (the CLI's, then train()'s): when the inner
        # one ends, the outer one takes torch over instead of leaving torch's default
        monkeypatch.delitem(sys.modules, "torch")
        with limit_threads(2):
            monkeypatch.setitem(sys.modules, "torch", torch)
            with limit_threads(1):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    for bad, error in [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="threads"):
            limit_threads(bad)


def test_progress_lines_carry_elapsed_time_and_eta(monkeypatch):
    from cmverify.train import _clock
    from cmverify.train import _trainer as trainer

    assert _clock.duration(4.6) == "5 s"
    assert _clock.duration(65) == "1 min 05 s"
    assert _clock.duration(3725) == "1 h 02 min"
    clock = _clock.Clock(TrainConfig(steps=1000, eval_every=300), start=0.0)
    assert [clock.evaluations(k) for k in (299, 300, 999, 1000)] == [0, 1, 3, 4]
    # 250 steps in 10 s, evaluations not yet timed: 750 steps at 25/s, 4 evaluations to come
    assert clock.line(250, now=10.0) == "elapsed 10 s, ETA 30 s + 4 evaluations"
    clock.eval_seconds, clock.evals = 6.0, 1  # 300 steps in 12 s, one evaluation in 6 s
    # 700 steps at 25/s, 3 evaluations at 6 s each
    assert clock.line(300, now=18.0) == "elapsed 18 s, ETA 46 s"
    clock.eval_seconds, clock.evals = 24.0, 4
    assert clock.line(1000, now=64.0) == "elapsed 1 min 04 s, ETA 0 s"
    monkeypatch.setattr(trainer, "PROGRESS_EVERY", 4)
    lines = []
    train(TrainConfig(steps=10, eval_every=10, **TINY), progress=lines.append)
    assert [line.split()[2] for line in lines[:2]] == ["4/10", "8/10"]
    assert all("elapsed" in line and "ETA" in line for line in lines)
    assert lines[-1].startswith("step 10/10") and "one-step rel RMSE" in lines[-1]


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(pid, SIGINT) is POSIX")
def test_interrupts_held_defers_ctrl_c_to_the_end_of_the_block():
    """The three files of a checkpoint are moved into place with SIGINT held back: a
    Ctrl-C arriving meanwhile is raised after the block, not inside it — also once torch's
    worker threads exist (a signal mask in the main thread did not hold then)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    a = torch.ones(512, 512)
    assert float((a @ a).sum()) == 512.0**3  # a threaded product: torch's workers start
    torch.set_num_threads(before)
    from cmverify.train._checkpoint import interrupts_held

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    events = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100_000):  # Python's checks for pending signals run here
                    pass
                events.append("block finished")
            events.append("after the block")  # not reached: the interrupt comes first
    finally:
        signal.signal(signal.SIGINT, previous)
    assert events == ["block finished"]
