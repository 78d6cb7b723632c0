"""The mixture path in torch: differentiable exact velocity, denoiser, score (exact layer).

:meth:`MixturePath.to_torch` builds a :class:`TorchMixturePath`. It evaluates the same
closed forms as the numpy path and shares their sources instead of retyping them:

- the interpolant's coefficients ``α, σ, α̇, α α̇, σ σ̇, W`` are the symbolic layer's
  expressions, lambdified to torch (:meth:`Interpolant.torch_coefficients`);
- each quantity's per-component terms ``(scale_k, offset_k)`` of ``Σ_k r_k [offset_k +
  U_k (scale_k ⊙ y_k)]`` are :class:`~cmverify.exact._evaluation.Evaluator`'s own methods
  (``velocity_terms``, ``denoiser_terms``, …), and the velocity Jacobian's component terms
  are :func:`~cmverify.exact._jacobian.component_terms`, all called on torch tensors in
  the same *components, coordinates, points* layout;
- only the generic steps are torch code here: the eigenbasis change, the log-sum-exp
  responsibilities (``torch.softmax`` / ``torch.logsumexp``) and the sums over components.

Everything is differentiable in ``t`` and ``x`` with autograd and ``torch.func`` (``jvp``,
``vjp``, ``jacrev``, ``vmap``): no in-place operation, no data-dependent branch. The
direct route only: the numpy path's scaled route for points far from every mode is not
reproduced. The solver's door :meth:`TorchMixturePath.velocity_trusted` of isotropic and
probabilistic-PCA mixtures takes the numpy path's product route instead
(:mod:`cmverify.exact._torch_gram`, not differentiable), forming the eigenbasis only for
the rows that route flags. Rows whose Mahalanobis term exceeds :data:`MAX_Q` (``2^20`` in float64, ``2^11``
in float32) come back NaN instead of finite garbage; below it float32's error grows like
``2^-24`` times that term (3e-7 near the modes, 5e-6 at typical points at ``t = 0``). The
checks of ``t`` and ``x`` values run outside ``torch.func`` transforms (under ``vmap`` a
``t`` outside ``[0, 1]`` is not caught).
"""

from __future__ import annotations

import numpy as np
import torch

from .._rows import finite_rows
from ._evaluation import MAX_DIRECT_Q, Coefficients, Evaluation, Evaluator
from ._jacobian import component_terms
from ._torch_gram import TorchGramVelocity

__all__ = ["TorchMixturePath"]

_COEFFICIENTS = ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma", "wronskian")
#: The largest Mahalanobis term (at the most likely component) of a row evaluated here:
#: the numpy path's direct-route limit in float64 (exponents blurred by ≤ 2e-10); in
#: float32 2^11 (blurred by ≤ 1.2e-4; beyond it a Jacobian was measured off 20×). Rows
#: beyond come back NaN — the numpy path's scaled route computes them.
MAX_Q = {torch.float64: MAX_DIRECT_Q, torch.float32: 2.0**11}


def _wrapped(value: torch.Tensor) -> bool:
    """True inside a ``torch.func`` transform (a batched or dual tensor): value checks
    would be data-dependent control flow there."""
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(value))


class _TorchEvaluator:
    """:class:`Evaluator`'s layout and terms on torch tensors (see the module docstring)."""

    denoiser_terms = Evaluator.denoiser_terms
    expected_noise_terms = Evaluator.expected_noise_terms
    score_terms = Evaluator.score_terms
    velocity_terms = Evaluator.velocity_terms

    def __init__(self, numpy_evaluator: Evaluator, dtype: torch.dtype, device: torch.device):
        def as_tensor(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.array(a, dtype=np.float64), dtype=dtype, device=device)

        self.eigvals = as_tensor(numpy_evaluator.eigvals)
        self.means = as_tensor(numpy_evaluator.means)
        self.eigvecs = as_tensor(numpy_evaluator.mixture.eigvecs)
        self.eigvecs_t = as_tensor(numpy_evaluator.eigvecs_t)
        self.identity_basis = numpy_evaluator.identity_basis
        self.log_norm_const = as_tensor(numpy_evaluator.log_norm_const)
        self._coefficients = numpy_evaluator.interpolant.torch_coefficients(_COEFFICIENTS)
        self.block_rows = numpy_evaluator.block_rows
        self.max_q = MAX_Q[dtype]

    def to_eigenbasis(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.identity_basis else torch.matmul(self.eigvecs_t, v)

    def from_eigenbasis(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.identity_basis else torch.matmul(self.eigvecs, v)

    def coefficients(self, t: torch.Tensor) -> Coefficients:
        """:meth:`Evaluator.coefficients` for ``t`` of shape ``(m,)``."""
        coefs = [c.reshape(1, 1, -1) for c in self._coefficients(t)]  # α, σ, α̇, αα̇, σσ̇, W
        alpha, sigma = coefs[0], coefs[1]
        # .contiguous(): a product of (1, 1, n) and (K, d, 1) may come out in a permuted
        # layout that makes every later operation 10× slower (per-point times)
        c = (alpha * alpha * self.eigvals + sigma * sigma).contiguous()
        inv_c = 1.0 / c
        log_det = torch.log(c).sum(dim=1)
        const = self.log_norm_const - 0.5 * log_det
        # fields in Coefficients' order: the six coefficients, then what follows from c
        return Coefficients(*coefs, inv_c, torch.sqrt(inv_c), log_det, const, const.amax(dim=0))

    def evaluate(self, t: torch.Tensor, x: torch.Tensor) -> Evaluation:
        """:meth:`Evaluator.evaluate` (the direct route) for ``t`` ``(m,)``, ``x`` ``(n, d)``."""
        co = self.coefficients(t)
        yk = self.to_eigenbasis(
            (x.T.contiguous().unsqueeze(0) - co.alpha * self.means).contiguous()
        )
        z = yk * co.inv_sqrt_c
        log_comp = co.const - 0.5 * (z * z).sum(dim=1)
        # one exp per component: torch.logsumexp and then exp(log_comp − log_p) cost two
        # (22% of a solve's time on eight_gaussians); the top detached — log p and the
        # responsibilities do not depend on it, so their derivatives are unchanged
        top = log_comp.amax(dim=0).detach()
        weights = torch.exp(log_comp - top)
        total = weights.sum(dim=0)
        log_p = top + torch.log(total)
        return Evaluation(
            co=co,
            yk=yk,
            resp=weights / total,
            log_comp=log_comp,
            top=log_p,
            log_total=torch.zeros_like(log_p),
            log_p=log_p,
        )

    def combine(self, ev: Evaluation, terms) -> torch.Tensor:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]``, shape ``(n, d)``."""
        scale, offset = terms
        inner = self.from_eigenbasis((scale * ev.yk).contiguous())
        if offset is not None:
            inner = inner + offset.contiguous()
        return (ev.resp.unsqueeze(1) * inner).sum(dim=0).T

    def velocity_jacobian(self, ev: Evaluation) -> torch.Tensor:
        """``Σ_k r_k U_k diag(g_k) U_kᵀ + Σ_k r_k (m_k − v)(s_k − s̄)ᵀ``, shape ``(n, d, d)``
        (:mod:`cmverify.exact._jacobian`)."""
        g, m, s = component_terms(self, ev)
        rb = ev.resp.unsqueeze(1)
        v = (rb * m).sum(dim=0)
        score = (rb * s).sum(dim=0)
        grad = torch.einsum("kin,kjn->nij", rb * (m - v), s - score)
        weighted = (rb * g).expand_as(m)
        if self.identity_basis:
            return grad + torch.diag_embed(weighted.sum(dim=0).T)
        return grad + torch.einsum("kia,kan,kja->nij", self.eigvecs, weighted, self.eigvecs)


class TorchMixturePath:
    """The exact path as differentiable torch functions (module docstring).

    Built by :meth:`MixturePath.to_torch`. Every method takes ``t`` — a float, or a tensor
    of shape ``()`` or ``(n,)`` in ``[0, 1]`` — and ``x`` of shape ``(n, d)`` (or ``(d,)``
    for one point, e.g. under ``torch.func.vmap``), both of this path's ``dtype`` and
    ``device``, and returns tensors of that dtype and device.
    """

    def __init__(self, path, dtype: torch.dtype = torch.float64, device="cpu") -> None:
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
        self._path = path
        self._dtype = dtype
        self._device = torch.device(device)
        torch.empty(0, dtype=dtype, device=self._device)  # an unavailable device fails here
        self._dense: _TorchEvaluator | None = None
        self._product: TorchGramVelocity | None = None
        if path._product is not None and dtype == torch.float64:
            self._product = TorchGramVelocity(path._product, path.interpolant, self._device)

    @property
    def _ev(self) -> _TorchEvaluator:
        """The eigenbasis route (formed on first need: a low-rank mixture's dense
        eigendecomposition is ``O(K d³)``, and the solver's product route rarely needs it)."""
        if self._dense is None:
            self._dense = _TorchEvaluator(self._path._evaluator, self._dtype, self._device)
        return self._dense

    @property
    def path(self):
        """The numpy :class:`~cmverify.exact.MixturePath` this was built from."""
        return self._path

    @property
    def dim(self) -> int:
        return self._path.dim

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return self._device

    def __repr__(self) -> str:
        return f"TorchMixturePath({self._path!r}, dtype={self._dtype}, device='{self._device}')"

    def _inputs(self, t: object, x: object) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(t (m,), x (n, d), single)``: shapes and dtypes checked always, values outside
        ``torch.func`` transforms."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != self._dtype or x.device.type != self._device.type:
            raise TypeError(
                f"x has dtype {x.dtype} on {x.device}; this path computes in {self._dtype} on "
                f"{self._device} (convert x, or build another with path.to_torch(dtype, device))"
            )
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"x must have shape (n, {self.dim}) or ({self.dim},), got {tuple(x.shape)}"
            )
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            t = torch.tensor(float(t), dtype=self._dtype, device=x.device)
        if not isinstance(t, torch.Tensor) or t.dtype != self._dtype:
            raise TypeError(f"t must be a float or a {self._dtype} tensor, got {t!r:.80}")
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != x.shape[0]):
            raise ValueError(
                f"t must have shape () or ({x.shape[0]},) for x of shape {tuple(x.shape)}, "
                f"got {tuple(t.shape)}"
            )
        if not (_wrapped(t) or _wrapped(x)):
            if not bool(torch.all((t >= 0) & (t <= 1))):
                raise ValueError("t must lie in [0, 1] (and not be NaN)")
            if not bool(torch.all(torch.isfinite(x))):
                raise ValueError("x must be finite (no NaN or inf)")
        return t.reshape(-1), x, single

    def _blocks(self, t: torch.Tensor, x: torch.Tensor, compute) -> torch.Tensor:
        """``compute(evaluation)`` over blocks of rows (the numpy path's block size: arrays
        of ``K · d · rows`` entries that stay in cache; 4× faster than one pass at 100,000
        points), concatenated."""
        rows = self._ev.block_rows
        if x.shape[0] <= rows:
            return self._masked(compute, self._ev.evaluate(t, x))
        parts = []
        for start in range(0, x.shape[0], rows):
            stop = start + rows
            tb = t if t.shape[0] == 1 else t[start:stop]
            parts.append(self._masked(compute, self._ev.evaluate(tb, x[start:stop])))
        return torch.cat(parts, dim=0)

    def _masked(self, compute, ev: Evaluation) -> torch.Tensor:
        """``compute(ev)`` with NaN on the rows beyond :data:`MAX_Q` (``2 (max_k b_k − log
        p)`` bounds the Mahalanobis term at the most likely component, as in the numpy
        path's ``needs_scaling``): wrong values there would be finite and plausible."""
        out = compute(ev)
        far = 2.0 * (ev.co.max_const - ev.log_p) > self._ev.max_q
        far = far.reshape(far.shape + (1,) * (out.dim() - 1))
        return torch.where(far, torch.full_like(out, float("nan")), out)

    def _combined(self, terms_name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``Σ_k r_k [offset_k + U_k (scale_k ⊙ y_k)]`` of the terms ``terms_name``, on
        checked ``t`` ``(m,)`` and ``x`` ``(n, d)``."""
        terms = getattr(self._ev, terms_name)
        return self._blocks(t, x, lambda ev: self._ev.combine(ev, terms(ev.co)))

    def _quantity(self, terms_name: str, t: object, x: object) -> torch.Tensor:
        t, x, single = self._inputs(t, x)
        out = self._combined(terms_name, t, x)
        return out[0] if single else out

    def velocity(self, t: object, x: object) -> torch.Tensor:
        """``v(t, x) = Σ r_k [α̇ μ_k + U_k ((α α̇ λ_k + σ σ̇) / c_k ⊙ y_k)]``, shape ``(n, d)``."""
        return self._quantity("velocity_terms", t, x)

    def velocity_trusted(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:meth:`velocity` without the checks, for solvers whose tensors are valid by
        construction: ``t`` ``(n,)`` in ``[0, 1]``, ``x`` ``(n, d)`` finite, both of this
        path's dtype and device (rows beyond :data:`MAX_Q` are NaN, as there). Isotropic
        and probabilistic-PCA mixtures in float64 take the numpy path's product route
        (:mod:`cmverify.exact._torch_gram`; not differentiable), the eigenbasis route only
        on the rows it flags."""
        if self._product is None:
            return self._combined("velocity_terms", t, x)
        v, ok = self._product.velocity(t, x)
        if not bool(ok.all()):
            rest = torch.nonzero(~ok).flatten()
            v[rest] = self._combined("velocity_terms", t if t.shape[0] == 1 else t[rest], x[rest])
        return v

    def velocity_host_checked(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:meth:`velocity_trusted` (float64) for the torch solver, with the rows that the
        torch routes cannot bound computed by the numpy path on the host: those the
        product route flags (numpy takes its Woodbury route there; while a low-rank
        mixture's eigenbasis came from a dense eigendecomposition, 9.99999916e-9 for an
        eigenvalue 1e-8, flagged rows near such data had been 8.9e-4 off, found in review)
        and those beyond :data:`MAX_Q` (numpy's scaled route)."""
        if self._product is None:
            v = self._combined("velocity_terms", t, x)
            ok = finite_rows(v)
        else:
            v, ok = self._product.velocity(t, x)
        if not bool(ok.all()):
            rest = torch.nonzero(~ok).flatten()
            t_rest = (t if t.shape[0] == 1 else t[rest]).cpu().numpy()
            v_rest = self._path.velocity_trusted(
                np.broadcast_to(t_rest, (rest.numel(),)).copy(), x[rest].cpu().numpy()
            )
            v[rest] = torch.as_tensor(v_rest, dtype=v.dtype, device=v.device)
        return v

    def denoiser(self, t: object, x: object) -> torch.Tensor:
        """``D(t, x) = E[x0 | x_t = x]``, shape ``(n, d)``."""
        return self._quantity("denoiser_terms", t, x)

    def expected_noise(self, t: object, x: object) -> torch.Tensor:
        """``E[x1 | x_t = x]``, shape ``(n, d)``."""
        return self._quantity("expected_noise_terms", t, x)

    def score(self, t: object, x: object) -> torch.Tensor:
        """``∇ log p_t(x)``, shape ``(n, d)``."""
        return self._quantity("score_terms", t, x)

    def log_prob(self, t: object, x: object) -> torch.Tensor:
        """``log p_t(x)``, shape ``(n,)`` (``()`` for one point)."""
        t, x, single = self._inputs(t, x)
        out = self._blocks(t, x, lambda ev: ev.log_p)
        return out[0] if single else out

    def velocity_jacobian(self, t: object, x: object) -> torch.Tensor:
        """``∇v(t, x)``, shape ``(n, d, d)``, in closed form (as the numpy path's)."""
        t, x, single = self._inputs(t, x)
        out = self._blocks(t, x, self._ev.velocity_jacobian)
        return out[0] if single else out
