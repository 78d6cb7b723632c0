"""The claim catalogue (DESIGN.md) as objects: :class:`Claim` and :data:`CATALOGUE`.

``verify``, the README table, the proofs and ``pytest --cmverify-claims`` all read
:data:`CATALOGUE`; a paper's repository states its own :class:`Claim` the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..exact import MixturePath, mixtures
from ..symbolic import interpolants
from ._boundary import int_boundary, param_boundary
from ._case import STANDARD_CASES, BatteryConfig, Case, mixture_cases
from ._flowmaps import conventions, flowmap_identities, meanflow_identity
from ._flows import flow_gauss, flow_map, flow_quantile, flow_velocity
from ._huber import measure_pseudo_huber
from ._induction import measure_ct_gauss, measure_ct_global, measure_song_t1
from ._local import measure_ct_local, measure_euler_local, measure_swap_local
from ._losses import measure_song_t2
from ._multistep import measure_multistep
from ._results import Check, ClaimResult
from ._tangents import measure_scm_tangent
from ._targets import measure_meanflow_floor, measure_meanflow_weighting, measure_shortcut_base

__all__ = ["CATALOGUE", "Claim", "Measure", "catalogue_markdown"]

#: ``measure(case, settings, rng) -> checks``: measures the claim on one case. The runner
#: stamps the case's name on the checks (a check's own ``case`` text, e.g. ``"F =
#: cubic"``, is appended), times it and derives ``rng`` from (seed, claim id, case name).
Measure = Callable[[Case, BatteryConfig, np.random.Generator], Sequence[Check]]


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Claim:
    """One claim: a stable ``id`` (e.g. ``"EULER-LOCAL"``), a one-line ``title``, the
    ``statement`` (the mathematics, in Unicode), the ``cases`` it is measured on and the
    ``measure`` function (see :data:`Measure`)."""

    id: str
    title: str
    statement: str
    cases: tuple[Case, ...]
    measure: Measure

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise ValueError(
                f"claim id must be letters, digits, '-', '_' or '.' (e.g. 'MY-CLAIM'), got {self.id!r}"
            )
        for key in ("title", "statement"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip() or "\n" in value:
                raise ValueError(
                    f"claim {self.id}: {key} must be one non-empty line, got {value!r}"
                )
        cases = tuple(self.cases) if isinstance(self.cases, Sequence) else ()
        if not cases or not all(isinstance(c, Case) for c in cases):
            raise TypeError(f"claim {self.id}: cases must be a non-empty sequence of Case objects")
        names = [c.name for c in cases]
        if len(set(names)) != len(names):
            raise ValueError(f"claim {self.id}: case names repeat: {names}")
        if not any(c.quick for c in cases):
            raise ValueError(f"claim {self.id}: no case is quick (the quick battery runs those)")
        object.__setattr__(self, "cases", cases)
        if not callable(self.measure):
            raise TypeError(f"claim {self.id}: measure must be callable, got {self.measure!r}")

    def selected_cases(self, settings: BatteryConfig) -> tuple[Case, ...]:
        """The cases the settings select (the quick ones only in quick mode)."""
        return tuple(c for c in self.cases if c.quick or not settings.quick)


_GAUSSIAN = mixture_cases(("gaussian",))
#: The random 3-d mixture of FLOWMAP-IDENTITIES: 4 full-covariance components (seed 3).
_RANDOM_3D = Case(
    "random_mixture(d=3, K=4, seed=3)/trig",
    lambda: MixturePath(mixtures.random_mixture(3, 4, 3), interpolants.trig()),
    quick=False,
)
_EIGHT = mixture_cases(("eight_gaussians",), lambda k, interp: interp == "linear")
_LINEAR_QUICK = lambda k, interp: interp == "linear"  # noqa: E731
#: eight_gaussians under linear and trig, in the full battery only.
_EIGHT_BOTH = mixture_cases(("eight_gaussians",), lambda k, interp: False)

_CLAIMS = (
    Claim(
        "INT-BOUNDARY",
        "the interpolant's boundary conditions and its marginal for mixture data",
        "α_0 = σ_1 = 1, α_1 = σ_0 = 0; for mixture data x_t ~ Σ w_k N(α μ_k, α² Σ_k + σ² I)",
        STANDARD_CASES,
        int_boundary,
    ),
    Claim(
        "FLOW-VELOCITY",
        "the velocity of the interpolant and the probability-flow ODE",
        "v = E[α̇ x0 + σ̇ x1 | x_t] in closed form for mixtures; equals the probability-flow "
        "ODE −λ_t x − ½ g_t² ∇log p_t with λ = −d log α/dt, g² = σ² d/dt log(σ²/α²); "
        "velocity ↔ denoiser ↔ expected noise ↔ score conversions; finite on all of [0, 1]",
        STANDARD_CASES,
        flow_velocity,
    ),
    Claim(
        "FLOW-GAUSS",
        "the flow map of Gaussian data",
        "Gaussian data N(μ, Σ): X_{s→t}(x) = α_t μ + C_t^{1/2} C_s^{-1/2} (x − α_s μ), "
        "C_t = α_t² Σ + σ_t² I; linear case X_{1→0}(x1) = μ + Σ^{1/2} x1",
        _GAUSSIAN,
        flow_gauss,
    ),
    Claim(
        "FLOW-QUANTILE",
        "in one dimension the flow map is the quantile map",
        "in one dimension X_{1→0}(x1) = F_data⁻¹(Φ(x1)) (the flow is the monotone rearrangement)",
        mixture_cases(("seed_bimodal",)),
        flow_quantile,
    ),
    Claim(
        "FLOW-MAP",
        "the flow map's semigroup, inverse, boundary and transport identities",
        "semigroup X_{u→t}∘X_{s→u} = X_{s→t}; inverse; f*(0, x) = x; ∂_t f* + (∇f*) v = 0",
        tuple(c for c in STANDARD_CASES if not c.name.startswith("gaussian/")),
        flow_map,
    ),
    Claim(
        "EULER-LOCAL",
        "the local error of one Euler step of the probability flow",
        "X_{s→s−Δ}(y) − (y − v(s, y) Δ) = ½ Δ² a(s, y) + O(Δ³)",
        STANDARD_CASES,
        measure_euler_local,
    ),
    Claim(
        "SWAP-LOCAL",
        "swapping the expectation out of the model costs O(Δ²)",
        "for F ∈ C²: E[F(y − δ Δ) | x_s = y] − F(y − v(s, y) Δ) "
        "= ½ Δ² tr(∇²F · Cov(δ | x_s = y)) + O(Δ³) — the seed's expectation swap",
        STANDARD_CASES,
        measure_swap_local,
    ),
    Claim(
        "CT-LOCAL",
        "the consistency-training and Euler-distillation optima, one step",
        "with F = f*(s − Δ, ·): the consistency-training optimum E[F(x_{s−Δ}) | x_s = y] "
        "(same x0, x1) differs from f*(s, y) by ½ Δ² [tr(∇²F Cov(δ | y)) + ∇F (E[γ | y] − "
        "a(s, y))] + O(Δ³), where γ = α̈ x0 + σ̈ x1 (zero for the linear interpolant); the "
        "Euler-distillation optimum F(y − v Δ) differs by −½ Δ² ∇F a(s, y) + O(Δ³)",
        STANDARD_CASES,
        measure_ct_local,
    ),
    Claim(
        "CT-GLOBAL",
        "local errors add up to O(Δ)",
        "iterating either recursion 1/Δ times from f(0, x) = x gives error O(Δ) at t = 1 "
        "(measured order 1, in sup norm and in L²(p_1))",
        mixture_cases(("mild_bimodal",), _LINEAR_QUICK),
        measure_ct_global,
    ),
    Claim(
        "CT-GAUSS",
        "the CT recursion for Gaussian data and its global error constant",
        "for Gaussian data the CT recursion coincides exactly with distillation by the DDIM "
        "step x̂ = α_{s−Δ} D(s, y) + σ_{s−Δ} E[x1 | x_s = y] (which is the Euler step for the "
        "linear interpolant): the consistency function is affine, so the swap error "
        "vanishes; the global error constant in closed form",
        _GAUSSIAN,
        measure_ct_gauss,
    ),
    Claim(
        "SONG-T1",
        "zero-loss distillation inherits the solver's order",
        "zero-loss distillation with a one-step solver of order p has sup error O(Δ^p): "
        "Euler 1, Heun 2",
        mixture_cases(("mild_bimodal", "gaussian", "eight_gaussians"), _LINEAR_QUICK),
        measure_song_t1,
    ),
    Claim(
        "SONG-T2",
        "the CD and CT losses agree to o(Δ)",
        "L_CD − L_CT = o(Δ) for fixed smooth student and target (squared L2, Euler, exact "
        "velocity)",
        STANDARD_CASES,
        measure_song_t2,
    ),
    Claim(
        "MULTISTEP",
        "the multistep sampler with the exact consistency function samples p_t",
        "with the exact consistency function, the seed's multistep sampler (x_{t_i} = "
        "α_{t_i} f*(t_{i−1}, x_{t_{i−1}}) + σ_{t_i} z_i) leaves each x_{t_i} distributed as "
        "p_{t_i}",
        STANDARD_CASES,
        measure_multistep,
    ),
    Claim(
        "PARAM-BOUNDARY",
        "the consistency-model parameterization satisfies f(0, x) = x",
        "f(t, x) = c_skip(t) x + c_out(t) F_θ(t, x) with c_skip(0) = 1, c_out(0) = 0 gives "
        "f(0, x) = x for every network",
        STANDARD_CASES,
        param_boundary,
    ),
    Claim(
        "FLOWMAP-IDENTITIES",
        "the two-time flow map's identities: Lagrangian, Eulerian, semigroup, Jacobian",
        "L ∂_t X_{s→t} = v(t, X); E ∂_s X_{s→t} + ∇X_{s→t} v(s, ·) = 0; S X_{u→t}∘X_{s→u} = "
        "X_{s→t}; B X_{t→t} = id, ∂_t X_{s→t}|_{t=s} = v(s, ·); J ∂_t ∇X = ∇v(t, X) ∇X and "
        "log det ∇X_{s→t}(x) = log p_s(x) − log p_t(X_{s→t}(x))",
        (*_EIGHT, _RANDOM_3D),
        flowmap_identities,
    ),
    Claim(
        "MEANFLOW-IDENTITY",
        "MeanFlow's average velocity satisfies its identity",
        "u(z, r, t) = (z − X_{t→r}(z))/(t − r) satisfies u = v(t, z) − (t − r)(∂_t u + ∇_z u · "
        "v(t, z)) (E applied to X_{t→r} = z − (t − r) u), and u(z, t, t) = v(t, z)",
        _EIGHT,
        meanflow_identity,
    ),
    Claim(
        "MEANFLOW-FLOOR",
        "MeanFlow's target at the exact u: zero semi-gradient and a loss floor",
        "at the exact u, u_tgt − u = ∇X_{t→r}(z)(v_c − v(t, z)) with v_c = α̇ x0 + σ̇ x1: "
        "E[u_tgt − u | x_t] = 0 (the semi-gradient vanishes) and the unweighted loss is "
        "E ‖∇X_{t→r}(v_c − v)‖² = E tr(∇X Cov(v_c | x_t) ∇Xᵀ) (loss_floors.meanflow), "
        "the flow-matching floor at r = t",
        (*mixture_cases(("mild_bimodal",), _LINEAR_QUICK), *_EIGHT_BOTH),
        measure_meanflow_floor,
    ),
    Claim(
        "MEANFLOW-WEIGHTING",
        "MeanFlow's adaptive weight moves the optimum off the velocity",
        "at r = t (target v_c) the fixed point of sg(1/(‖Δ‖² + ε)^p) ‖Δ‖², Δ = u − v_c, solves "
        "E[(u − v_c)/(‖u − v_c‖² + ε)^p | x_t] = 0: u = v for p = 0 and wherever the law of "
        "v_c given x_t is symmetric about v (Gaussian data), biased otherwise (p = ½, 1 at "
        "ε = 0.01), with u − v = −(p/ε) E[(v_c − v)‖v_c − v‖² | x_t] + O(ε⁻²) for large ε",
        (
            *mixture_cases(("mild_bimodal",), _LINEAR_QUICK),
            Case.named("gaussian", "trig"),
            *_EIGHT_BOTH,
        ),
        measure_meanflow_weighting,
    ),
    Claim(
        "SHORTCUT-BASE",
        "shortcut models' self-consistency with a flow-matching base converges to Euler",
        "with the base case s(x, τ, d_min) = −v (flow matching) the fixed point of s(x, τ, 2d) "
        "= ½[s(x, τ, d) + s(x + d s(x, τ, d), τ + d, d)] makes x + D s(x, τ, D) the composition "
        "of D/d_min Euler steps: error d_min E + O(d_min²) against X_{t→t−D} (order 1, E from "
        "dE/dσ = −∇v E − ½ a), exact in the limit of a d = 0 base case",
        (*mixture_cases(("mild_bimodal",), _LINEAR_QUICK), *_EIGHT_BOTH),
        measure_shortcut_base,
    ),
    Claim(
        "SCM-TANGENT",
        "sCM's tangent at the exact f*: zero for sCD, biased when normalized in sCT",
        "g = ∂_t f* + ∇f* · dx/dt is 0 with dx/dt = v (sCD keeps f*, normalized or not); with "
        "dx/dt = v_c it is ∇f*(v_c − v), of conditional mean 0, but E[g/(‖g‖ + c) | x_t] ≠ 0 "
        "unless its law is symmetric (Gaussian data): −E[g‖g‖]/c² + O(c⁻³) for large c; the "
        "discrete CT gradient (f*(t, x_t) − f*(t − Δ, x_{t−Δ}))/Δ → g at order Δ",
        (
            *mixture_cases(("mild_bimodal",), _LINEAR_QUICK),
            Case.named("gaussian", "trig"),
            *_EIGHT_BOTH,
        ),
        measure_scm_tangent,
    ),
    Claim(
        "PSEUDO-HUBER",
        "iCT/ECT's pseudo-Huber loss: consistent for c > 0, biased by a median at c = 0",
        "one CT step's fixed point under √(‖r‖² + c²) − c, W = ∇F (v − v_c): for c > 0 it is "
        "the squared loss's minus Δ³ E[W‖W‖² | x_t]/(2c²) (order 3, below CT's O(Δ²): "
        "consistent) once Δ‖W‖ ≲ c/8, i.e. Δ ≲ 6e-5 here for iCT's c = 0.00054√d; for c = 0 it is "
        "the geometric median, off by Δ gmed(W | x_t) (order 1), and in d = 1 the induction "
        "converges at order 1 to the flow of the median velocity α̇ m + σ̇ (x − α m)/σ (m the "
        "posterior median of x0), not to f*",
        (*mixture_cases(("mild_bimodal",), _LINEAR_QUICK), *_EIGHT_BOTH),
        measure_pseudo_huber,
    ),
    Claim(
        "CONVENTIONS",
        "every method's network converts to X_{s→t}",
        "for each kind of cmverify.flowmaps (map, consistency, MeanFlow, Align Your Flow, "
        "Boffi et al., shortcut, CTM, TrigFlow) the exact network read back through "
        "as_flow_map is X_{s→t} (TrigFlow: σ_d X̂_{s→0}(x/σ_d) on the data scaled by 1/σ_d)",
        mixture_cases(("eight_gaussians",), lambda k, interp: interp == "trig"),
        conventions,
    ),
)

#: Claim ID → :class:`Claim`, in the order of DESIGN.md's catalogue and then its contract
#: additions (FLOWMAP-IDENTITIES, MEANFLOW-IDENTITY, the training targets MEANFLOW-FLOOR,
#: MEANFLOW-WEIGHTING, SHORTCUT-BASE, SCM-TANGENT and PSEUDO-HUBER, CONVENTIONS) (read-only).
CATALOGUE: Mapping[str, Claim] = MappingProxyType({c.id: c for c in _CLAIMS})


def catalogue_markdown(
    results: Sequence[ClaimResult] | None = None,
    *,
    catalogue: Mapping[str, Claim] | None = None,
) -> str:
    """The README's claims table, generated from the catalogue: a GitHub-Markdown table
    with one row per claim — its id, title and statement, and its cases (the quick ones in
    bold). With ``results`` (from :func:`~cmverify.claims.run_battery`) a last column
    gives each claim's worst ``measured / tolerance`` and verdict. Pipes, backticks,
    ``*`` and ``_`` in the text are escaped."""
    catalogue = CATALOGUE if catalogue is None else catalogue
    by_id = {r.id: r for r in results or ()}
    header = "| id | claim | cases |" + (" measured |" if results is not None else "")
    rows = [header, "|---|---|---|" + ("---|" if results is not None else "")]
    for claim in catalogue.values():
        cases = ", ".join(
            f"**{_escape(c.name)}**" if c.quick else _escape(c.name) for c in claim.cases
        )
        cells = [claim.id, f"{_escape(claim.title)}: {_escape(claim.statement)}", cases]
        if results is not None:
            r = by_id.get(claim.id)
            cells.append(
                "not run" if r is None else f"{r.measured:.2g} {'pass' if r.passed else 'FAIL'}"
            )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _escape(text: str) -> str:
    for ch in "\\`*_|<":
        text = text.replace(ch, "\\" + ch)
    return text
