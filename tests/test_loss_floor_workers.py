"""The MeanFlow floor's Jacobian solves shared among worker processes
(``meanflow_quadrature(..., workers=n)``, :mod:`cmverify.loss_floors._workers`): the same
records to rounding, failures named by their index in the whole batch, processes stopped on
return and on an exception, bad ``workers`` refused."""

import multiprocessing
import os
import pickle
import signal
import warnings

import numpy as np
import pytest

import cmverify as cmv
from cmverify import loss_floors
from cmverify.loss_floors import _data_side, _workers
from cmverify.reference import ReferenceFlow, SolverFailure


def _records(path, t, r, max_solves, workers):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small budget: not converged, warned
        return loss_floors.meanflow_quadrature(path, t, r, max_solves=max_solves, workers=workers)


@pytest.mark.parametrize(
    "interpolant, seed, t, r, max_solves",
    [
        ("linear", 1, 0.8, 0.5, 8_000),  # three components in d = 2: Gauss–Hermite, cubature
        ("trig", 2, 0.6, 0.2, 8_000),
    ],
)
def test_workers_give_the_same_records(interpolant, seed, t, r, max_solves):
    """Each trajectory is solved under its own step control, so slices of a batch solved in
    other processes give the values of one process to rounding (a batch's size can change
    the rounding of its linear algebra): the value to 1e-12, the estimate to 1e-9, the same
    solves and rule."""
    mixture = cmv.mixtures.random_mixture(2, 3, seed)
    path = cmv.MixturePath(mixture, cmv.interpolants.by_name(interpolant))
    alone = _records(path, [t, t], [r, 0.5 * (t + r)], max_solves, 1)
    shared_batches: list[int] = []
    log_terms = _workers.SolvePool.log_terms

    def counting(self, t, r, y):
        shared_batches.append(len(y))
        return log_terms(self, t, r, y)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_workers.SolvePool, "log_terms", counting)
        shared = _records(path, [t, t], [r, 0.5 * (t + r)], max_solves, 2)
    for one, many in zip(alone, shared, strict=True):
        assert (many.rule, many.nodes, many.converged) == (one.rule, one.nodes, one.converged)
        assert many.value == pytest.approx(one.value, rel=1e-12, abs=0)
        # the estimate holds the nodes' error estimates, which rounding moves more
        assert many.error_estimate == pytest.approx(one.error_estimate, rel=1e-9, abs=0)
    assert len(shared_batches) >= 2  # the workers solved batches of both floors
    assert multiprocessing.active_children() == []  # the workers stopped on return


def test_batches_really_go_to_the_workers(monkeypatch, tmp_path):
    """A batch of at least two slices is solved in other processes (the pids that solved
    are written where the caller can read them), a batch of another flow in the caller."""
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 2, 0), cmv.Interpolant.linear())
    flow = ReferenceFlow(path, rtol=1e-8)
    solve = ReferenceFlow.solve_jacobian

    def spying(self, x, s, t, **options):
        (tmp_path / str(os.getpid())).touch()
        return solve(self, x, s, t, **options)

    monkeypatch.setattr(ReferenceFlow, "solve_jacobian", spying)  # the workers fork after
    y = np.random.default_rng(0).standard_normal((4 * _workers.MIN_SLICE, 2))
    with _workers.SolvePool(path, flow, 2) as pool:
        assert pool.shares(path, flow, len(y)) and not pool.shares(path, flow, 300)
        assert not pool.shares(path, ReferenceFlow(path), len(y))  # another flow: here
        log_a, b, errors = pool.log_terms(0.9, 0.4, y)
    side = _data_side.DataSide(path, flow, 0.9, 0.4)
    here = side.log_terms(y)
    np.testing.assert_allclose(log_a, here[0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(b, here[1], rtol=1e-13, atol=0)
    # the nodes' error estimates, near rounding here (1e-13 relative), move by up to 4e-5
    # of themselves where a Jacobian entry's last bit moves
    np.testing.assert_allclose(errors, side.errors, rtol=1e-3, atol=0)
    solved_by = {int(p.name) for p in tmp_path.iterdir()}
    assert os.getpid() in solved_by and len(solved_by - {os.getpid()}) == 2


def test_failed_solves_are_named_by_their_index_in_the_whole_batch(monkeypatch):
    """:class:`SolverFailure` raised in workers reaches the caller as one process would
    raise it: every failed trajectory of every slice, by its index in the batch (not in its
    slice; review: only the first slice's had been kept), and the workers stop."""
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 2, 0), cmv.Interpolant.linear())
    flow = ReferenceFlow(path, rtol=1e-8)
    y = np.random.default_rng(1).standard_normal((4 * _workers.MIN_SLICE, 2))
    bad = [3, 3 * _workers.MIN_SLICE + 5]  # one in each slice of two
    y[bad] = 1234.5

    solve = ReferenceFlow.solve_jacobian

    def failing(self, x, s, t, **options):
        hit = np.flatnonzero(np.asarray(x)[:, 0] == 1234.5)
        if hit.size:
            raise SolverFailure.of({int(i): "a planted failure" for i in hit}, len(x))
        return solve(self, x, s, t, **options)

    monkeypatch.setattr(ReferenceFlow, "solve_jacobian", failing)
    with pytest.raises(SolverFailure) as raised:
        with _workers.SolvePool(path, flow, 2) as pool:
            pool.log_terms(0.9, 0.4, y)
    assert list(raised.value.indices) == bad
    assert raised.value.reasons == ["a planted failure"] * 2
    assert f"#{bad[1]}: a planted failure" in str(raised.value)
    assert f"failed on 2 of {len(y)} trajectories" in str(raised.value)
    assert multiprocessing.active_children() == []


def test_warnings_in_the_workers_reach_the_caller(monkeypatch):
    """A warning raised in a worker's solve is issued in the calling process (review: it
    had been lost)."""
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 2, 0), cmv.Interpolant.linear())
    flow = ReferenceFlow(path, rtol=1e-8)
    solve = ReferenceFlow.solve_jacobian

    def warning(self, x, s, t, **options):
        warnings.warn(f"planted in {os.getpid()}", UserWarning, stacklevel=1)
        return solve(self, x, s, t, **options)

    monkeypatch.setattr(ReferenceFlow, "solve_jacobian", warning)
    y = np.random.default_rng(2).standard_normal((2 * _workers.MIN_SLICE, 2))
    with pytest.warns(UserWarning, match="planted in") as caught:
        with _workers.SolvePool(path, flow, 2) as pool:
            pool.log_terms(0.9, 0.4, y)
    assert len({str(w.message) for w in caught}) == 2  # one from each worker
    assert f"planted in {os.getpid()}" not in {str(w.message) for w in caught}


def test_an_exception_in_progress_stops_the_workers(monkeypatch):
    """What ``progress`` raises while the workers run propagates, and none is left."""
    from cmverify.loss_floors import _progress

    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)  # a line after every round
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 3, 1), cmv.Interpolant.linear())
    alive: list[int] = []

    def stop(line):
        if "cubature" in line:
            alive.append(len(multiprocessing.active_children()))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loss_floors.meanflow_quadrature(
            path, 0.8, 0.5, rtol=1e-11, max_solves=50_000, progress=stop, workers=2
        )
    assert alive == [2]  # raised while both workers were running
    assert multiprocessing.active_children() == []


_ORPHAN = """
import os, signal, sys, time
import numpy as np
signal.signal(signal.SIGTERM, lambda *args: None)  # a caller's handler, inherited by forks
import cmverify as cmv
from cmverify.loss_floors import _workers
from cmverify.reference import ReferenceFlow
path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 2, 0), cmv.Interpolant.linear())
flow = ReferenceFlow(path, rtol=1e-8)
with _workers.SolvePool(path, flow, 2) as pool:
    pool.log_terms(0.9, 0.4, np.zeros((2 * _workers.MIN_SLICE, 2)))
    import multiprocessing
    print(*[p.pid for p in multiprocessing.active_children()], flush=True)
    time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def test_the_workers_die_with_the_caller(tmp_path):
    """The death of the calling process alone (a scheduler's kill, ``timeout``) takes the
    workers with it (review: they had been left running, adopted by init), also where the
    caller had set a SIGTERM handler that ignores it (second review)."""
    import subprocess
    import sys
    import time

    caller = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    workers = [int(pid) for pid in caller.stdout.readline().split()]
    try:
        assert len(workers) == 2 and all(_running(pid) for pid in workers)
        caller.kill()  # its own SIGTERM handler would ignore terminate()
        caller.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(pid) for pid in workers)
    finally:  # leave nothing behind, whatever failed
        for pid in [caller.pid, *workers]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_solver_failure_pickles_with_its_fields():
    failure = SolverFailure.of({7: "too many steps", 2: "not finite"}, 10)
    back = pickle.loads(pickle.dumps(failure))
    assert type(back) is SolverFailure and str(back) == str(failure)
    assert list(back.indices) == [2, 7] and back.reasons == ["not finite", "too many steps"]


@pytest.mark.parametrize(
    "workers, error",
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_bad_workers_are_refused(workers, error):
    path = cmv.MixturePath(cmv.mixtures.random_mixture(2, 2, 0), cmv.Interpolant.linear())
    with pytest.raises(error, match="workers must be a whole number"):
        loss_floors.meanflow(path, 0.8, 0.5, workers=workers)


def test_workers_are_limited_to_linux_the_usable_cores_and_a_process_that_may_fork(
    monkeypatch,
):
    assert _workers.check_workers(1) == 1 and _workers.check_workers(np.int64(2)) == 2
    cores = _workers.usable_cores()
    with pytest.raises(ValueError, match=f"more than the {cores} usable cores"):
        _workers.check_workers(cores + 1)
    with monkeypatch.context() as patch:
        patch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
        with pytest.raises(ValueError, match="Linux only"):
            _workers.check_workers(2)
    with monkeypatch.context() as patch:
        patch.setattr(_workers.sys, "platform", "darwin")  # fork offered, not safe
        with pytest.raises(ValueError, match=r"Linux only .*darwin"):
            _workers.check_workers(2)
    with monkeypatch.context() as patch:
        patch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
        with pytest.raises(ValueError, match="daemonic"):
            _workers.check_workers(2)
    assert _workers.check_workers(1) == 1  # one process: none of these matter
