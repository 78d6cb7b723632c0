"""The product route of the velocity (:mod:`cmverify.exact._gram`) in torch (exact layer).

For isotropic and probabilistic-PCA components (``Σ_k = F_k F_kᵀ + s_k I``) the numpy path
computes the velocity by three matrix products per block of rows, ``4 d K (r + 1)`` flops
per point, instead of the eigenbasis route's ``O(K d²)``
(:class:`~cmverify.exact._gram.GramVelocity`, whose docstring derives it). This is the same
arithmetic on tensors, built from that object's arrays (nothing is derived twice), for the
torch solver (:meth:`TorchMixturePath.velocity_trusted
<cmverify.exact.TorchMixturePath.velocity_trusted>`) — on a GPU at ``d = 3072`` the
eigenbasis route would form ``K`` dense ``d × d`` products per point.

The same rounding guards: rows whose exponents could blur by more than
:data:`~cmverify.exact._gram.CENTRE_RATIO` times the direct route's are recomputed about
their most likely component's mean; rows that still cannot be bounded (far along a factor
of a narrow component), rows far from every mode and non-finite rows come back flagged
(``ok`` false): the solver's door sends them to the numpy path on the host, the
eigenbasis route of :meth:`velocity_trusted` computes them itself. Not differentiable by
design (data-dependent branches): the public torch quantities keep the eigenbasis route.
"""

from __future__ import annotations

import numpy as np
import torch

from ._evaluation import MAX_DIRECT_Q, PRODUCT_RANGE
from ._gram import _LOG_EPS, CENTRE_RATIO, GramVelocity

__all__ = ["TorchGramVelocity"]

_COEFFICIENTS = ("alpha", "sigma", "dalpha", "alpha_dalpha", "sigma_dsigma", "wronskian")
#: The centred rows' differences ``Δ_jk·x'`` and ``Σ_k r_k g⊥_k Δ_jk`` by one product
#: over every pair ``(j, k)`` up to this many multiply-adds (``K² d m``), else one product
#: per group of rows with the same ``j`` (digits, K = 10, d = 64, 500 rows: 206 µs
#: against 502 µs; 4,096 rows: 1,582 against 1,202).
EVERY_PAIR_FLOPS = 2**24


class TorchGramVelocity:
    """:class:`~cmverify.exact._gram.GramVelocity` on float64 tensors on ``device``
    (module docstring); ``velocity(t, x)`` returns ``(v, ok)``."""

    def __init__(self, gram: GramVelocity, interpolant, device: torch.device) -> None:
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.asarray(a, dtype=np.float64), device=device)

        self.k, self.d, self.r = gram.k, gram.d, gram.r
        self.block_rows = gram.block_rows
        self.max_mm = gram.max_mm
        self.basis_aug_t = tensor(gram.basis_aug_t)  # (K r + K, d + 1)
        self.means = tensor(gram.means)  # (K, d)
        self.factors_all_t = tensor(gram.factors_all_t)  # (K r, d)
        self.delta = tensor(gram.means[None, :, :] - gram.means[:, None, :])  # Δ_jk, (K, K, d)
        self.delta_flat = self.delta.reshape(-1, gram.d)  # (K², d)
        self.delta_sq = tensor(gram.delta_sq)  # (K, K)
        self.delta_f = tensor(gram.delta_f)  # (K, K, r)
        self.s = tensor(gram.s)  # (K, 1)
        self.gamma = tensor(gram.gamma)  # (K, r, 1)
        self.log_norm_const = tensor(gram.log_norm_const)  # (K, 1)
        self._coefficients = interpolant.torch_coefficients(_COEFFICIENTS)

    def velocity(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, ok)`` for ``t`` ``(n,)`` or ``(1,)`` in ``[0, 1]`` and finite ``x``
        ``(n, d)``, in blocks of rows: ``v`` ``(n, d)``; the rows not ``ok`` must be
        recomputed by the eigenbasis route."""
        n = x.shape[0]
        if n <= self.block_rows:
            return self._block(t, x)
        parts = [
            self._block(
                t if t.shape[0] == 1 else t[i : i + self.block_rows], x[i : i + self.block_rows]
            )
            for i in range(0, n, self.block_rows)
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _block(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, r = self.k, self.r
        n, d = x.shape
        alpha, sigma, dalpha, alpha_dalpha, sigma_dsigma, wronskian = (
            c.reshape(1, -1) for c in self._coefficients(t)
        )
        a2 = alpha * alpha
        c_perp = a2 * self.s + sigma * sigma  # (K, m)
        inv_perp = 1.0 / c_perp
        inv_par = 1.0 / (c_perp[:, None, :] + a2[:, None, :] * self.gamma)  # 1 / c∥, (K, r, m)
        # p_k = F_kᵀ x − α F_kᵀ μ_k and μ_k·x − α |μ_k|²/2 in one product (x gets −α)
        # (preallocated and filled: torch.cat took 170 µs on a 500-row block)
        x_aug = torch.empty((n, d + 1), dtype=x.dtype, device=x.device)
        x_aug[:, :d] = x
        x_aug[:, d] = -alpha[0]
        proj = torch.mm(x_aug, self.basis_aug_t.T).T  # (K r + K, n)
        p = proj[: k * r].reshape(k, r, n)
        xx = (x * x).sum(dim=1)
        yy = xx - 2.0 * alpha * proj[k * r :]  # |x − α μ_k|², (K, n)
        pc = p * inv_par  # p / c∥, (K, r, n)
        q = inv_perp * (yy - a2 * (p * pc).sum(dim=1))
        prod = inv_par.prod(dim=1)  # Σ_j log c∥_j as one log while in range, as numpy's
        if r == 0 or bool((prod.min() > PRODUCT_RANGE[0]) & (prod.max() < PRODUCT_RANGE[1])):
            log_par = -torch.log(prod)
        else:
            log_par = -torch.log(inv_par).sum(dim=1)
        const = self.log_norm_const - 0.5 * ((d - r) * torch.log(c_perp) + log_par)  # (K, m)
        # q at the most likely component (argmax over the first axis is slow in torch;
        # its index is needed on the centred rows only)
        first = const - 0.5 * q
        q_top = torch.where(first == first.amax(dim=0), q, torch.inf).amin(dim=0)
        q_top = torch.clamp(q_top, min=1.0)
        inv_perp_max = inv_perp.amax(dim=0)
        centre = inv_perp_max * (xx + a2[0] * self.max_mm) > CENTRE_RATIO * q_top
        rows = torch.nonzero(centre).flatten()
        centred = rows.numel() > 0
        if centred:  # about the most likely component's mean (the numpy route's docstring)
            a_rows = alpha[0].expand(n)[rows]
            j = torch.argmax(first[:, rows], dim=0)
            groups = self._groups(j)
            p_c, yy_c, xc = self._centred(a_rows, x[rows], j, groups)
            p[:, :, rows] = p_c
            yy[:, rows] = yy_c
            pc = p * inv_par
            q = inv_perp * (yy - a2 * (p * pc).sum(dim=1))
        log_comp = const - 0.5 * q
        top = log_comp.amax(dim=0)
        ok = 2.0 * (const.amax(dim=0) - top) <= MAX_DIRECT_Q
        if r > 0:  # the split |y⊥|² = |y|² − Σ p²/γ cancels for a component that matters
            matters = log_comp >= top + _LOG_EPS
            split = inv_perp * yy > CENTRE_RATIO * torch.clamp(q, min=1.0)
            ok &= (matters & split).sum(dim=0) == 0
        resp = torch.exp(log_comp - top)
        resp = resp / resp.sum(dim=0)
        g_perp = (alpha_dalpha * self.s + sigma_dsigma) * inv_perp  # (K, m)
        w = (alpha * sigma * wronskian) * inv_perp  # (K, m)
        # v = [F_1 … F_K] coef_F + [μ_1 … μ_K] coef_μ + (Σ_k r_k g⊥_k) x
        coef_f = (pc * -(resp * w)[:, None, :]).reshape(k * r, n)
        coef_m = resp * (dalpha - alpha * g_perp)  # (K, n)
        rg = resp * g_perp  # (K, n)
        v = torch.addcmul(torch.mm(coef_m.T, self.means), rg.sum(dim=0)[:, None], x)
        if r > 0:
            v = torch.addmm(v, coef_f.T, self.factors_all_t)
        if centred:
            # g⊥ (x − α μ_k) as g⊥ x' − α g⊥ Δ_jk (the numpy route's docstring)
            sub_m = resp[:, rows] * dalpha[0].expand(n)[rows]
            v_c = torch.addcmul(torch.mm(sub_m.T, self.means), rg[:, rows].sum(dim=0)[:, None], xc)
            if r > 0:
                v_c = torch.addmm(v_c, coef_f[:, rows].T, self.factors_all_t)
            rg_c = rg[:, rows]  # Σ_k r_k g⊥_k Δ_jk below, (m, d)
            if groups is None:  # one product with r_k g⊥_k placed in row i's block j_i
                m = rows.numel()
                placed = torch.zeros((m, k, k), dtype=x.dtype, device=x.device)
                placed.scatter_(1, j[:, None, None].expand(m, 1, k), rg_c.T[:, None, :])
                v_c -= a_rows[:, None] * (placed.reshape(m, k * k) @ self.delta_flat)
            else:
                for jj, sel in groups:
                    v_c[sel] -= a_rows[sel, None] * (rg_c[:, sel].T @ self.delta[jj])
            v[rows] = v_c
        # a row sum is finite unless an entry is not (or it overflows: the eigenbasis route
        # then redoes a good row); torch's row-wise all() is 10× slower (96 µs at 500 × 64)
        ok &= torch.isfinite(v.sum(dim=1))
        return v, ok

    def _groups(self, j: torch.Tensor) -> list[tuple[int, torch.Tensor]] | None:
        """The rows of each most likely component ``j`` (``(m,)``), for one product per
        group; ``None`` — one product with every difference ``Δ_jk`` (``K²`` rows), of
        which each row keeps its own ``j``'s — where that costs at most
        :data:`EVERY_PAIR_FLOPS` (small products cost torch ~40 µs each on CPU)."""
        m = j.shape[0]
        if self.k * self.k * self.d * m <= EVERY_PAIR_FLOPS:
            return None
        counts = torch.bincount(j, minlength=self.k).tolist()
        busy = [jj for jj, c in enumerate(counts) if c]
        return [(jj, torch.nonzero(j == jj).flatten()) for jj in busy]

    def _centred(
        self,
        alpha: torch.Tensor,
        x: torch.Tensor,
        j: torch.Tensor,
        groups: list[tuple[int, torch.Tensor]] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(p, |y|², x')`` of shapes ``(K, r, m)``, ``(K, m)``, ``(m, d)`` about ``μ_j``."""
        k, r = self.k, self.r
        m = x.shape[0]
        xc = x - alpha[:, None] * self.means[j]  # x' = x − α μ_j
        p = (self.factors_all_t @ xc.T).reshape(k, r, m)
        p = p - alpha * self.delta_f[j].permute(1, 2, 0)  # F_kᵀ Δ_jk, (K, r, m)
        if groups is None:  # Δ_jk·x' for every (j, k), then row i's j_i: (K, m)
            every = (self.delta_flat @ xc.T).reshape(k, k, m)
            dx = every.gather(0, j[None, None, :].expand(1, k, m))[0]
        else:
            dx = torch.empty((k, m), dtype=x.dtype, device=x.device)
            for jj, sel in groups:
                dx[:, sel] = self.delta[jj] @ xc[sel].T
        xx = (xc * xc).sum(dim=1)
        yy = xx - 2.0 * alpha * dx + alpha * alpha * self.delta_sq[j].T
        return p, yy, xc
