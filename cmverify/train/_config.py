"""The training run's configuration (:class:`TrainConfig`, serialized to ``config.json``).

Four methods share one loop (:mod:`cmverify.train._trainer`):

- ``ct``, ``cd``: consistency training and distillation of ``f_θ(t, x)``
  (:mod:`cmverify.train._losses`);
- ``meanflow``: MeanFlow's average velocity ``u_θ(z, r, t)``, JVP target
  (:mod:`cmverify.train._meanflow`);
- ``shortcut``: shortcut models' ``s_θ(x, τ, d)``, flow-matching base and self-consistency
  bootstrap (:mod:`cmverify.train._shortcut`).

The fields that only one family reads carry its prefix (``mf_``, ``sc_``); ``teacher``
(``"conditional"``: the conditional velocity ``v_c``, training; ``"exact"``: the exact
velocity ``v`` of the mixture, distillation) is read by the flow-map methods (CT/CD say it
by their name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from .._validation import as_count, as_real
from ..exact import mixtures
from ..symbolic import interpolants

__all__ = ["DEFAULT_FREQUENCIES", "DEFAULT_TARGET_MU", "METHODS", "TrainConfig"]

#: The training methods of :func:`cmverify.train.train`.
METHODS = ("ct", "cd", "meanflow", "shortcut")

#: Fourier frequencies ``π 2^k``, ``k < K``, per time input by default: high frequencies
#: make MeanFlow's ``∂_t u_θ`` (inside its own target) large, and its training unstable
#: (RESULTS.md, the trainer study).
DEFAULT_FREQUENCIES = {"ct": 8, "cd": 8, "meanflow": 4, "shortcut": 8}
#: The target network's EMA rate by default: CT/CD's study chose 0.95; shortcut's
#: bootstrap did best from the network itself without gradient (RESULTS.md).
DEFAULT_TARGET_MU = {"ct": 0.95, "cd": 0.95, "meanflow": 0.0, "shortcut": 0.0}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (serialized to ``config.json``).

    The defaults of the flow-map methods (``mf_*``, ``sc_*``) are the papers' (MeanFlow:
    25% of pairs with ``r ≠ t``; shortcut: ``d_min = 1/128``) except where the study (``benchmarks/trainer_flowmaps.py`` → RESULTS.md) found better
    on eight_gaussians: MeanFlow's times ``t ~ U(0, 1)``, ``r ~ U(0, t)`` (``"nested"``;
    the paper's logit-normal ``(−0.4, 1.0)`` is ``mf_times="logit_normal"``), the plain
    squared loss ``p = 0`` (the paper's ``p = 1``, ``ε = 1e-3`` moves the optimum off the
    exact ``u``: MEANFLOW-WEIGHTING; one-step error 0.23 against 0.10 measured), and 4
    time frequencies (8 made ``∂_t u_θ``, inside the target, unstable); shortcut's
    bootstrap from the network itself without gradient (``target_mu = 0``; the released
    code's EMA 0.999 lagged: one-step 0.12–0.14) on a quarter of the batch (released: an
    eighth). ``target_mu`` and ``frequencies`` left ``None`` take the method's default
    (:data:`DEFAULT_TARGET_MU`, :data:`DEFAULT_FREQUENCIES`; :meth:`resolved`) when the
    run starts.
    """

    mixture: str = "eight_gaussians"
    interpolant: str = "linear"
    method: str = "cd"  # one of METHODS
    steps: int = 15000
    batch: int = 512
    lr: float = 2e-3
    seed: int = 0
    n_min: int = 64  # curriculum: N from n_min ...
    n_max: int = 64  # ... doubling up to n_max (n_min = n_max: fixed N)
    #: EMA rate of the target network (0: stop-gradient; None: the method's default, 0.95
    #: for CT/CD, 0 for shortcut's bootstrap; MeanFlow has no target network)
    target_mu: float | None = None
    eval_ema: float = 0.999  # EMA of the weights used for evaluation
    distance: str = "huber"
    huber_c: float = 0.03
    inverse_dt: bool = True
    time_sampling: str = "lognormal"  # or "uniform"
    p_mean: float = -1.1
    p_std: float = 2.0
    cd_solver: str = "euler"
    width: int = 128
    depth: int = 3
    frequencies: int | None = None  # Fourier features per time input (None: the method's)
    eval_every: int = 1000
    eval_points: int = 2000
    teacher: str = "conditional"  # flow-map methods: "conditional" (v_c) or "exact" (v)
    mf_ratio: float = 0.25  # MeanFlow: fraction of pairs with r ≠ t
    mf_times: str = "nested"  # MeanFlow: (r, t) "logit_normal", "uniform" or "nested"
    mf_time_mean: float = -0.4  # MeanFlow: logit-normal times, logit t ~ N(mean, std²)
    mf_time_std: float = 1.0
    adaptive_p: float = 0.0  # MeanFlow: weight 1/sg(‖Δ‖² + ε)^p (0: plain squared loss)
    adaptive_eps: float = 1e-3
    sc_d_min: float = 1.0 / 128  # shortcut: the smallest step, 2^-K
    sc_base: str = "d_min"  # shortcut: flow-matching rows at d = d_min, or "zero" (d = 0)
    sc_bootstrap_fraction: float = 0.25  # shortcut: fraction of bootstrap rows

    def __post_init__(self) -> None:
        self._check_types()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        target_mu, frequencies = self._defaulted()  # validate the method's defaults too
        if self.distance not in ("l2", "huber"):
            raise ValueError(f"distance must be 'l2' or 'huber', got {self.distance!r}")
        if self.cd_solver not in ("euler", "heun"):
            raise ValueError(f"cd_solver must be 'euler' or 'heun', got {self.cd_solver!r}")
        if not (self.p_std > 0 and self.huber_c >= 0):
            raise ValueError(f"need p_std > 0 and huber_c ≥ 0, got {self.p_std}, {self.huber_c}")
        interpolants.by_name(self.interpolant)  # raises ValueError naming the known ones
        mixtures.by_name(self.mixture)  # raises ValueError naming the known mixtures
        if self.n_min < 1 or self.n_max < self.n_min:
            raise ValueError(
                f"need 1 ≤ n_min ≤ n_max (N, the number of time steps), got {self.n_min}, {self.n_max}"
            )
        if not 0.0 <= target_mu < 1.0:
            raise ValueError(f"target_mu (μ) must lie in [0, 1), got {target_mu}")
        if not 0.0 <= self.eval_ema < 1.0:
            raise ValueError(f"eval_ema must lie in [0, 1), got {self.eval_ema}")
        if not 1 <= frequencies <= 16:
            raise ValueError(f"frequencies must be None or 1 … 16, got {frequencies!r}")
        for name in ("steps", "batch", "width", "depth", "eval_every", "eval_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.time_sampling not in ("uniform", "lognormal"):
            raise ValueError(
                f"time_sampling must be 'uniform' or 'lognormal', got {self.time_sampling!r}"
            )
        self._check_flow_map_fields()

    def resolved(self) -> TrainConfig:
        """A copy with ``target_mu`` and ``frequencies`` set: the method's defaults
        (:data:`DEFAULT_TARGET_MU`, :data:`DEFAULT_FREQUENCIES`) where they are ``None``.
        :func:`~cmverify.train.train` runs, and records in ``config.json``, this copy; the
        fields themselves stay ``None``, so ``dataclasses.replace(config, method=...)``
        takes the new method's defaults."""
        if self.target_mu is not None and self.frequencies is not None:
            return self
        target_mu, frequencies = self._defaulted()
        return replace(self, target_mu=target_mu, frequencies=frequencies)

    def _defaulted(self) -> tuple[float, int]:
        """``(target_mu, frequencies)`` with the method's defaults where ``None``."""
        target_mu = DEFAULT_TARGET_MU[self.method] if self.target_mu is None else self.target_mu
        frequencies = self.frequencies
        return target_mu, DEFAULT_FREQUENCIES[self.method] if frequencies is None else frequencies

    def _check_types(self) -> None:
        """``TypeError`` for a field of the wrong type (a float where a whole number is
        expected, a bool, a string for a number), ``ValueError`` for a non-finite float."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ("target_mu", "frequencies"):
                continue
            if f.type == "str":
                if not isinstance(value, str):
                    raise TypeError(f"{f.name} must be a string, got {type(value).__name__}")
            elif f.type in ("int", "int | None"):
                object.__setattr__(self, f.name, as_count(value, f.name))  # numpy → int
            elif f.type == "bool":
                if not isinstance(value, bool):
                    raise TypeError(f"{f.name} must be True or False, got {value!r}")
            else:
                number = as_real(value, f.name)
                if not math.isfinite(number):
                    raise ValueError(f"{f.name} must be finite, got {value}")
                object.__setattr__(self, f.name, number)  # numpy scalars → float (JSON)
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"lr must lie in (0, 1), got {self.lr}")
        if self.seed >= 2**63:
            raise ValueError(f"seed must be below 2^63, got {self.seed}")

    def _check_flow_map_fields(self) -> None:
        if self.teacher not in ("conditional", "exact"):
            raise ValueError(f"teacher must be 'conditional' or 'exact', got {self.teacher!r}")
        if self.teacher == "exact" and self.method in ("ct", "cd"):
            raise ValueError(
                "teacher='exact' is for meanflow and shortcut (CT trains on the conditional "
                "velocity, CD distills the exact one: choose the method)"
            )
        if not 0.0 <= self.mf_ratio <= 1.0:
            raise ValueError(f"mf_ratio must lie in [0, 1], got {self.mf_ratio}")
        if not 0.0 <= self.sc_bootstrap_fraction < 1.0:
            raise ValueError(
                "sc_bootstrap_fraction must lie in [0, 1) (without flow-matching rows any "
                f"self-consistent s is a minimum), got {self.sc_bootstrap_fraction}"
            )
        if self.mf_times not in ("logit_normal", "uniform", "nested"):
            raise ValueError(
                f"mf_times must be 'logit_normal', 'uniform' or 'nested', got {self.mf_times!r}"
            )
        if not (math.isfinite(self.mf_time_mean) and 0.0 < self.mf_time_std < math.inf):
            raise ValueError(
                "need a finite mf_time_mean and 0 < mf_time_std < inf, got "
                f"{self.mf_time_mean}, {self.mf_time_std}"
            )
        if not (0.0 <= self.adaptive_p < math.inf and 0.0 < self.adaptive_eps < math.inf):
            raise ValueError(
                f"need 0 ≤ adaptive_p and 0 < adaptive_eps, got {self.adaptive_p}, {self.adaptive_eps}"
            )
        levels = math.log2(1.0 / self.sc_d_min) if 2.0**-30 <= self.sc_d_min <= 1.0 else -1.0
        if not (levels >= 2 and levels == round(levels)):
            raise ValueError(
                f"sc_d_min must be 2^-K for a whole K from 2 to 30 (e.g. 1/128; at most 1/4, "
                f"so that the evaluation's 4-step chain is on the grid), got {self.sc_d_min}"
            )
        if self.sc_base not in ("d_min", "zero"):
            raise ValueError(f"sc_base must be 'd_min' or 'zero', got {self.sc_base!r}")
