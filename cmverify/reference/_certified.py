"""The per-trajectory certificate shared by every reference solve (reference layer).

A solve is run at refinement levels ``k = 0, 1, …`` (:data:`LEVELS` of
:mod:`cmverify.reference._flow`): levels 0 and 1 for every trajectory, the later ones for
the trajectories whose estimate ``|Y_k − Y_{k−1}|`` exceeds the target ``atol + rtol |Y_k|``.
The state may hold several quantities (the point ``X``; the point and its Jacobian
``∇X``): each *block* of columns gets its own estimate and target (Euclidean or Frobenius
norms), and a trajectory meets the target when every block does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._batched_rk import BatchedSolution, SolverFailure

__all__ = ["Certified", "certified_solve", "row_norm", "unresolved_message"]


def row_norm(v: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of ``v`` (shape ``(n, m)``), shape ``(n,)``, without
    overflow or underflow of the squares (rows of 1e160 have norms, not inf)."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape[0] == 0:
        return np.zeros(0)
    m = np.max(np.abs(v), axis=1)
    safe = np.where(m > 0, m, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        return m * np.sqrt(np.sum((v / safe[:, None]) ** 2, axis=1))


@dataclass(frozen=True)
class Certified:
    """The returned level's states and the check of every block.

    ``y`` ``(n, m)``; ``error`` and ``target`` ``(n, B)`` for the ``B`` blocks;
    ``level`` ``(n,)`` the level returned per trajectory; ``unresolved`` the trajectories
    over target after the last level; ``failed`` index → why a refinement failed.
    """

    y: np.ndarray
    n_accepted: np.ndarray
    n_rejected: np.ndarray
    n_calls: int
    n_row_evaluations: int
    error: np.ndarray
    target: np.ndarray
    level: np.ndarray
    unresolved: np.ndarray
    failed: dict[int, str]

    @property
    def ratio(self) -> np.ndarray:
        """``max over blocks of error / target``, shape ``(n,)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.max(self.error / self.target, axis=1, initial=0.0)


def certified_solve(
    run: Callable[[np.ndarray, np.ndarray], BatchedSolution],
    n: int,
    blocks: Sequence[slice],
    *,
    atol: float,
    rtol: float,
    n_levels: int,
    certify: bool,
    floor: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Certified:
    """Levels 0 and 1 for all ``n`` trajectories, then refinements (module docstring).

    ``floor(rows, y, steps)``: an error no second solve sees (float64's rounding along
    the way), per trajectory ``rows`` at states ``y`` after ``steps`` accepted steps, added
    to the first block's estimate at every check, so that a trajectory it puts over
    target is refined like any other (added after the last level instead, it had listed
    128 of 100,000 trajectories unresolved whose level-1 estimates were within 0.4% of the
    target and whose errors were ≤ 1.6e-13: five narrow modes from the data, rtol 1e-10).

    ``run(levels, rows)`` solves the trajectories ``rows`` (indices, shape ``(m,)``),
    row ``i`` at level ``levels[i]`` (shape ``(m,)``), and returns their
    :class:`BatchedSolution`; levels 0 and 1 go in one call (each trajectory twice,
    stacked: one right-hand-side call per stage serves both; 1.5–1.65 times faster than
    two solves at 8–64 trajectories, where the per-call overhead dominates, the same from
    1,000: benchmarks/RESULTS.md). With ``certify`` every trajectory
    goes one level further. A :class:`SolverFailure` at a refinement keeps the previous
    level for the trajectories it names (listed in ``failed``); at levels 0 and 1 it
    propagates, naming the trajectories (indices into ``0 … n − 1``).
    """
    everyone = np.arange(n)
    try:
        first = run(np.repeat(np.array([0, 1], dtype=np.int64), n), np.tile(everyone, 2))
    except SolverFailure as exc:
        failures: dict[int, str] = {}
        for i, reason in zip(exc.indices, exc.reasons, strict=True):
            failures.setdefault(int(i) % n, reason)
        raise SolverFailure.of(failures, n) from None
    calls, rows = first.n_calls, first.n_row_evaluations
    previous_y = first.y[:n]
    y = first.y[n:].copy()
    n_acc, n_rej = first.n_accepted[n:].copy(), first.n_rejected[n:].copy()

    def check(
        rows: np.ndarray, new: np.ndarray, old: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        error = np.stack([row_norm(new[:, b] - old[:, b]) for b in blocks], axis=1)
        target = np.stack([atol + rtol * row_norm(new[:, b]) for b in blocks], axis=1)
        if floor is not None:
            error[:, 0] += floor(rows, new, steps)
        return error, target

    error, target = check(everyone, y, previous_y, n_acc)
    level = np.ones(n, dtype=np.int64)
    failed: dict[int, str] = {}

    def over(idx: np.ndarray) -> np.ndarray:
        return ~np.all(error[idx] <= target[idx], axis=1)

    todo = everyone if certify else everyone[over(everyone)]
    for k in range(2, n_levels):
        if todo.size == 0:
            break
        try:
            sol = run(np.full(todo.size, k), todo)
        except SolverFailure as exc:  # keep the previous level for those; go on
            for i, reason in zip(exc.indices, exc.reasons, strict=True):
                failed[int(todo[i])] = reason
            todo = np.delete(todo, exc.indices)
            if todo.size == 0:
                break
            sol = run(np.full(todo.size, k), todo)
        calls, rows = calls + sol.n_calls, rows + sol.n_row_evaluations
        error[todo], target[todo] = check(todo, sol.y, y[todo], sol.n_accepted)
        y[todo], n_acc[todo], n_rej[todo] = sol.y, sol.n_accepted, sol.n_rejected
        level[todo] = k
        todo = todo[over(todo)]
    unresolved = np.union1d(todo, np.array(sorted(failed), dtype=np.int64))
    unresolved = unresolved[over(unresolved)]
    return Certified(
        y=y,
        n_accepted=n_acc,
        n_rejected=n_rej,
        n_calls=calls,
        n_row_evaluations=rows,
        error=error,
        target=target,
        level=level,
        unresolved=unresolved,
        failed=failed,
    )


def unresolved_message(done: Certified, n: int, rtol: float, atol: float) -> str:
    """The :class:`~cmverify.reference.AccuracyWarning` text for the unresolved
    trajectories of ``done`` (``n`` trajectories solved): how many, and the worst."""
    worst = int(done.unresolved[np.argmax(done.ratio[done.unresolved])])
    block = int(np.argmax(done.error[worst] / done.target[worst]))
    why = f"; solver failures: {done.failed[worst]}" if worst in done.failed else ""
    return (
        f"{done.unresolved.size} of {n} trajectories could not be shown to meet the "
        f"target atol + rtol|X| (rtol = {rtol:g}, atol = {atol:g}): worst "
        f"#{worst}, estimated error {done.error[worst, block]:.2e} against "
        f"{done.target[worst, block]:.2e} after {int(done.level[worst]) - 1} "
        f"refinements{why}. Where refinement cannot help, the flow amplifies "
        "perturbations along them beyond what float64 resolves "
        "(FlowSolution.unresolved lists them)"
    )
