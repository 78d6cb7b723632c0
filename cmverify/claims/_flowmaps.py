"""The two-time flow-map claims (claims layer), one case at a time.

- FLOWMAP-IDENTITIES: the reference ``X_{s→t}`` satisfies L (Lagrangian), E (Eulerian),
  S (semigroup), B (boundary) and J (Jacobian: against differences, and Liouville's
  ``log det ∇X_{s→t}(x) = log p_s(x) − log p_t(X_{s→t}(x))``) of FLOWMAPS.md §1.
- MEANFLOW-IDENTITY: the exact average velocity ``u(z, r, t) = ū(z; t→r)`` satisfies
  ``u = v − (t − r)(∂_t u + ∇_z u · v)``.
- CONVENTIONS: for every kind of :mod:`cmverify.flowmaps`, the exact network read back
  through :func:`~cmverify.flowmaps.as_flow_map` is ``X_{s→t}``.

Differences in time are 6th-order stencils with step :data:`TIME_STEP` of reference solves
from the data's bulk (:func:`bulk_points` mapped to the start time), as FLOW-MAP's
transport check: the budget there (solver noise ≲ 1e-12 — solves from one point at
neighbouring times take nearly the same steps — times the stencil's Σ|w| ≈ 1.8 over
``h``, ≲ 4e-9; truncation ``(h/ℓ)^6`` ≲ 2e-9) gives the tolerance :data:`TIME_TOLERANCE`.
"""

from __future__ import annotations

import numpy as np

from ..exact import MixturePath
from ..flowmaps import KINDS, as_flow_map, exact, trigflow_path
from ..reference import ReferenceFlow
from ..symbolic import time_stencil
from ._case import BatteryConfig, Case
from ._local import bulk_points
from ._results import Check

__all__ = ["conventions", "flowmap_identities", "meanflow_identity"]

#: The reference's target accuracy (rtol = atol).
RTOL = 1e-10
#: Step of the 6th-order time differences (FLOW-MAP's TRANSPORT_STEP, same budget).
TIME_STEP = 5e-4
#: L, E and the MeanFlow identity by time differences, relative (module docstring).
TIME_TOLERANCE = 1e-7
#: ``∇X`` against 4th-order central differences with step 1e-5 of solves at rtol 1e-12:
#: noise ≲ 1.5 · 1e-12 / 1e-5 = 1.5e-7 relative to ``1 + ‖∇X‖``; truncation ``h⁴ |∂⁵X|``
#: negligible (with h = 1e-3 a point near a separatrix was 0.6 off: ``X`` varies fast there).
FD_STEP, FD_TOLERANCE = 1e-5, 2e-7
#: X_{t→t} = x exactly; ū(x; s→s) = v(s, x) to rounding (DOP853's weights sum to 1).
ROUNDING = 1e-14
#: (s, t) pairs of L, E and the Jacobian checks, and (r, t) pairs of MeanFlow.
PAIRS = ((0.9, 0.3), (0.25, 0.75), (1.0, 0.0))
MEANFLOW_PAIRS = ((0.0, 1.0), (0.2, 0.7), (0.5, 0.9), (0.1, 0.3))


def _rows(v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(v, axis=-1)


def _n(settings: BatteryConfig) -> int:
    return max(8, settings.n_points // 8)


def _bulk(path: MixturePath, flow: ReferenceFlow, starts, n: int, rng) -> list[np.ndarray]:
    """For each start time ``s``, up to ``n`` points of ``p_s`` from the data's bulk
    (``X_{0→s}`` of :func:`bulk_points`), in one batched solve."""
    x0 = [bulk_points(path.mixture, n, rng) for _ in starts]
    s = np.concatenate([np.full(len(x), s) for x, s in zip(x0, starts, strict=True)])
    mapped = flow.map(np.concatenate(x0), 0.0, s)
    return np.split(mapped, np.cumsum([len(x) for x in x0])[:-1])


class _Batch:
    """Rows of one batched call: ``add`` queues ``(x, s, t)`` blocks and returns a handle;
    ``run(fun)`` calls ``fun(x, s, t)`` once on all rows; ``[handle]`` is that block's
    result. Every stencil of a claim goes into one solve: per-trajectory step control
    makes the rows independent, and one call saves the solver's per-step overhead."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.out: list[np.ndarray] = []

    def add(self, x: np.ndarray, s, t) -> int:
        n = len(x)
        self.blocks.append((x, np.broadcast_to(s, (n,)), np.broadcast_to(t, (n,))))
        return len(self.blocks) - 1

    def run(self, fun) -> None:
        x, s, t = (np.concatenate(parts) for parts in zip(*self.blocks, strict=True))
        result = fun(x, s, t)
        self.out = np.split(result, np.cumsum([len(b[0]) for b in self.blocks])[:-1])

    def __getitem__(self, handle: int) -> np.ndarray:
        return self.out[handle]


def _derivative(batch: _Batch, handles: list[int], weights: np.ndarray) -> np.ndarray:
    return sum(w * batch[h] for h, w in zip(handles, weights, strict=True))


def flowmap_identities(
    case: Case, settings: BatteryConfig, rng: np.random.Generator
) -> list[Check]:
    """FLOWMAP-IDENTITIES on one case (module docstring): L and E at :data:`PAIRS` by time
    differences, B exactly, S over random triples at points of ``p_s``, J against
    differences and Liouville's identity."""
    path = case.path
    flow = ReferenceFlow(path, rtol=RTOL)
    tight = ReferenceFlow(path, rtol=1e-12)
    n, d = _n(settings), path.dim
    points = _bulk(path, flow, [s for s, _ in PAIRS], n, rng)
    maps, jacs, diffs = _Batch(), _Batch(), _Batch()
    plan = []
    for (s, t), x in zip(PAIRS, points, strict=True):
        t_times, t_weights = time_stencil(t, TIME_STEP)
        s_times, s_weights = time_stencil(s, TIME_STEP)
        lag = [maps.add(x, s, tau) for tau in t_times]
        eul = [maps.add(x, sig, t) for sig in s_times]
        jac = jacs.add(x, s, t)
        # 4th-order central differences: (8 [f(x+h) − f(x−h)] − [f(x+2h) − f(x−2h)]) / 12h
        fd = [[diffs.add(x + k * FD_STEP * e, s, t) for k in (1, -1, 2, -2)] for e in np.eye(d)]
        plan.append((s, t, x, t_weights, lag, s_weights, eul, jac, fd))
    maps.run(flow.map)
    jacs.run(lambda x, s, t: flow.solve_jacobian(x, s, t).jacobian.reshape(len(x), -1))
    diffs.run(tight.map)
    lagrange = euler = fd_error = 0.0
    for s, t, x, t_weights, lag, s_weights, eul, jac_handle, fd in plan:
        jac = jacs[jac_handle].reshape(len(x), d, d)
        xt = flow.map(x, s, t)
        v = path.velocity(t, xt)
        dt = _derivative(maps, lag, t_weights)
        lagrange = max(lagrange, float(np.max(_rows(dt - v) / (1 + _rows(v)))))
        ds = _derivative(maps, eul, s_weights)
        jv = np.einsum("nij,nj->ni", jac, path.velocity(s, x))
        euler = max(euler, float(np.max(_rows(ds + jv) / (1 + _rows(jv)))))
        cols = [
            (8 * (diffs[p] - diffs[m]) - (diffs[p2] - diffs[m2])) / (12 * FD_STEP)
            for p, m, p2, m2 in fd
        ]
        gap = (jac - np.stack(cols, axis=2)).reshape(len(x), -1)
        fd_error = max(fd_error, float(np.max(_rows(gap) / (1 + _rows(jac.reshape(len(x), -1))))))
    # B: X_{t→t} = id, ū(x; t→t) = v(t, x)
    x = path.sample(0.5, n, rng)
    ident = float(np.max(np.abs(flow.map(x, 0.5, 0.5) - x)))
    v = path.velocity(0.5, x)
    limit = float(np.max(_rows(flow.average_velocity(x, 0.5, 0.5) - v) / (1 + _rows(v))))
    # S over random triples, and Liouville at random pairs, at points of p_s
    s, u, t = rng.uniform(0.0, 1.0, (3, n))
    x = path.sample(s, n, rng)
    mid = flow.map(x, s, u)
    both = flow.solve_jacobian(np.concatenate([x, mid]), np.concatenate([s, u]), np.tile(t, 2))
    direct_x, composed_x = both.x[:n], both.x[n:]
    jac, composed_jac = both.jacobian[:n], both.jacobian[n:]
    budget = RTOL * (
        _rows(composed_jac.reshape(n, -1)) * (1 + _rows(mid)) + 2 * (1 + _rows(direct_x))
    )
    semigroup = float(np.max(_rows(composed_x - direct_x) / budget))
    sign, logdet = np.linalg.slogdet(jac)
    log_ps, log_pt = path.log_prob(s, x), path.log_prob(t, direct_x)
    inv = np.linalg.inv(jac)
    # δ log det ≤ ‖J⁻¹‖_F ‖δJ‖_F, δ log p_t(X) ≤ |∇log p_t(X)| |δX|, plus rounding of log p
    liouville_budget = (
        RTOL * _rows(inv.reshape(n, -1)) * (1 + _rows(jac.reshape(n, -1)))
        + RTOL * _rows(path.score(t, direct_x)) * (1 + _rows(direct_x))
        + 1e-13 * (1 + np.abs(log_ps) + np.abs(log_pt))
    )
    liouville = np.where(sign > 0, np.abs(logdet - (log_ps - log_pt)) / liouville_budget, np.inf)
    return [
        Check(
            "L: ∂_t X_{s→t} = v(t, X), |Δ|/(1+|v|)",
            "",
            lagrange,
            TIME_TOLERANCE,
            f"6th-order time differences, h = {TIME_STEP:g}, of reference solves (FLOW-MAP's "
            "transport budget: noise ≲ 4e-9, truncation ≲ 2e-9)",
        ),
        Check(
            "E: ∂_s X_{s→t} + ∇X_{s→t} v(s, ·) = 0, |Δ|/(1+|∇X v|)",
            "",
            euler,
            TIME_TOLERANCE,
            "as L (relative to 1 + |∇X v|, not |∂_s X| + |∇X v|: at s = 1 the trig path's "
            "v(1, x) = −(π/2) E[x0] vanishes for centred data); ∇X from the variational "
            "equation (its own error ≤ 1e-10 ‖∇X‖)",
        ),
        Check(
            "S: X_{u→t}∘X_{s→u} = X_{s→t} over random triples, |Δ| / budget",
            "",
            semigroup,
            1.0,
            "budget rtol [‖∇X_{u→t}‖ (1+|X_{s→u}|) + 2 (1+|X_{s→t}|)]: three solves at rtol "
            "1e-10, the first one's error carried by ∇X_{u→t}",
        ),
        Check("B: X_{t→t} = id, max |Δ|", "", ident, 0.0, "exact: no integration"),
        Check(
            "B: ū(x; t→t) = v(t, x), |Δ|/(1+|v|)",
            "",
            limit,
            ROUNDING,
            "rounding: DOP853's weights sum to 1",
        ),
        Check(
            "J: ∇X_{s→t} vs central differences, ‖Δ‖_F/(1+‖∇X‖_F)",
            "",
            fd_error,
            FD_TOLERANCE,
            f"4th-order central differences, h = {FD_STEP:g}, of solves at rtol 1e-12: "
            "noise ≲ 1.5e-7",
        ),
        Check(
            "J: log det ∇X_{s→t}(x) = log p_s(x) − log p_t(X), |Δ| / budget",
            "",
            float(np.max(liouville)),
            1.0,
            "budget rtol ‖∇X⁻¹‖_F (1+‖∇X‖_F) + rtol |∇log p_t(X)| (1+|X|) + 1e-13 (1+|log p|): "
            "the certified errors of ∇X and X carried to log det and log p_t",
        ),
    ]


def meanflow_identity(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """MEANFLOW-IDENTITY on one case: at :data:`MEANFLOW_PAIRS` ``(r, t)``, the exact
    ``u(z, r, t) = ū(z; t→r)`` against ``v − (t − r)(∂_t u + ∇_z u · v)`` with ``∂_t u`` by
    time differences of reference solves and ``∇_z u = (I − ∇X_{t→r}(z))/(t − r)`` from
    the Jacobian; and ``u(z, t, t) = v(t, z)``."""
    path = case.path
    flow = ReferenceFlow(path, rtol=RTOL)
    n, d = _n(settings), path.dim
    points = _bulk(path, flow, [t for _, t in MEANFLOW_PAIRS], n, rng)
    averages, jacs = _Batch(), _Batch()
    plan = []
    for (r, t), z in zip(MEANFLOW_PAIRS, points, strict=True):
        times, weights = time_stencil(t, TIME_STEP)
        # ū(z; t→r) is average_velocity(z, t, r): "s" = t and "t" = r in the batch
        plan.append(
            (
                r,
                t,
                z,
                averages.add(z, t, r),
                averages.add(z, t, t),
                [averages.add(z, tau, r) for tau in times],
                weights,
                jacs.add(z, t, r),
            )
        )
    averages.run(flow.average_velocity)
    jacs.run(lambda x, s, t: flow.solve_jacobian(x, s, t).jacobian.reshape(len(x), -1))
    worst = limit = 0.0
    for r, t, z, u_handle, same_handle, stencil_handles, weights, jac_handle in plan:
        u, v = averages[u_handle], path.velocity(t, z)
        du_dt = _derivative(averages, stencil_handles, weights)
        grad_u = (np.eye(d) - jacs[jac_handle].reshape(len(z), d, d)) / (t - r)
        rhs = v - (t - r) * (du_dt + np.einsum("nij,nj->ni", grad_u, v))
        worst = max(worst, float(np.max(_rows(u - rhs) / (_rows(u) + _rows(v)))))
        limit = max(limit, float(np.max(_rows(averages[same_handle] - v) / (1 + _rows(v)))))
    return [
        Check(
            "u = v − (t − r)(∂_t u + ∇_z u · v), |Δ|/(|u|+|v|)",
            "",
            worst,
            TIME_TOLERANCE,
            f"6th-order time differences, h = {TIME_STEP:g}, of the directly integrated "
            "average velocity (FLOW-MAP's transport budget); ∇_z u from the variational "
            "equation",
        ),
        Check(
            "u(z, t, t) = v(t, z), |Δ|/(1+|v|)",
            "",
            limit,
            ROUNDING,
            "rounding: DOP853's weights sum to 1",
        ),
    ]


#: (s, t) pairs of X_{s→t} each kind can express (CONVENTIONS).
KIND_PAIRS = {
    "map": ((0.9, 0.2), (0.1, 0.8)),
    "consistency": ((1.0, 0.0), (0.4, 0.0)),
    "meanflow": ((1.0, 0.0), (0.8, 0.3), (0.5, 0.5)),
    "ayf": ((0.9, 0.2), (0.1, 0.8)),
    "boffi": ((0.9, 0.2), (0.1, 0.8)),
    "shortcut": ((1.0, 0.0), (0.75, 0.25), (0.5, 0.5)),
    "ctm": ((0.9, 0.0), (0.8, 0.3)),
    "trigflow": ((1.0, 0.0), (0.4, 0.0)),
}
#: TrigFlow's σ_d in the check (≠ 1, so the scaling is exercised).
SIGMA_DATA = 0.5


def conventions(case: Case, settings: BatteryConfig, rng: np.random.Generator) -> list[Check]:
    """CONVENTIONS on one case: for every kind, ``as_flow_map(exact(path, kind),
    kind).map(x, s, t)`` at :data:`KIND_PAIRS` against ``ReferenceFlow(path).map(x, s, t)``
    (``trigflow``: against ``σ_d X̂_{s→0}(x/σ_d)`` on :func:`trigflow_path`, the trig path
    only — it is defined on it)."""
    path = case.path
    flow = ReferenceFlow(path, rtol=RTOL)
    n = _n(settings)
    truths, scaled_truths = _Batch(), _Batch()
    plan = []
    for kind in KINDS:
        if kind == "trigflow" and path.interpolant.name != "trig":
            continue
        pairs = KIND_PAIRS[kind]
        x = path.sample(np.repeat([s for s, _ in pairs], n), n * len(pairs), rng)
        s, t = (np.repeat(column, n) for column in zip(*pairs, strict=True))
        if kind == "trigflow":
            handle = scaled_truths.add(x / SIGMA_DATA, s, t)
        else:
            handle = truths.add(x, s, t)
        plan.append((kind, x, s, t, handle))
    truths.run(flow.map)
    if scaled_truths.blocks:
        scaled_truths.run(ReferenceFlow(trigflow_path(path, SIGMA_DATA), rtol=RTOL).map)
    checks = []
    for kind, x, s, t, handle in plan:
        convention = {"sigma_data": SIGMA_DATA} if kind == "trigflow" else {}
        wrapped = as_flow_map(exact(path, kind, rtol=RTOL, **convention), kind, **convention)
        got = wrapped.map(x, s, t)
        truth = SIGMA_DATA * scaled_truths[handle] if kind == "trigflow" else truths[handle]
        worst = float(np.max(_rows(got - truth) / (1 + _rows(truth))))
        checks.append(
            Check(
                f"{kind}: as_flow_map(exact) = X_{{s→t}}, |Δ|/(1+|X|)",
                "",
                worst,
                2 * RTOL,
                "two reference computations at rtol 1e-10 (the network's and the map's); a round "
                "trip: checks of each kind in its paper's own variables are in "
                "tests/test_hostile_flowmaps.py",
            )
        )
    return checks
