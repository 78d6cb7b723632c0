"""Reference layer: flow maps by ODE with a per-trajectory accuracy
certificate (:class:`ReferenceFlow`), the closed-form Gaussian and one-dimensional
quantile flow maps they are checked against, exact conditional expectations by
Gauss–Hermite quadrature, order fitting, and sharded exact reference data
(:func:`reference_pairs`). Depends on the exact layer and SciPy.
"""

from ._batched_rk import BatchedSolution as BatchedSolution
from ._batched_rk import SolverFailure as SolverFailure
from ._batched_rk import solve_batched as solve_batched
from ._flow import ReferenceFlow as ReferenceFlow
from ._gaussian import gaussian_flow_map as gaussian_flow_map
from ._orders import OrderFit as OrderFit
from ._orders import fit_order as fit_order
from ._orders import refine_until_asymptotic as refine_until_asymptotic
from ._orders import step_sizes as step_sizes
from ._pairs import ReferenceShard as ReferenceShard
from ._pairs import reference_pairs as reference_pairs
from ._quadrature import MAX_DIM as MAX_DIM
from ._quadrature import conditional_expectation as conditional_expectation
from ._quadrature import conditional_nodes as conditional_nodes
from ._quadrature import gauss_hermite as gauss_hermite
from ._quadrature import joint_expectation as joint_expectation
from ._quadrature import marginal_expectation as marginal_expectation
from ._quantile import mixture_log_cdf as mixture_log_cdf
from ._quantile import mixture_log_sf as mixture_log_sf
from ._quantile import mixture_quantile as mixture_quantile
from ._quantile import posterior_quantile as posterior_quantile
from ._quantile import quantile_flow_map as quantile_flow_map
from ._sampling import MultistepRun as MultistepRun
from ._sampling import euler_step as euler_step
from ._sampling import heun_step as heun_step
from ._sampling import multistep_sample as multistep_sample
from ._sampling import multistep_times as multistep_times
from ._solution import AccuracyWarning as AccuracyWarning
from ._solution import FlowSolution as FlowSolution
from ._solution import JacobianSolution as JacobianSolution

__all__ = [
    "MAX_DIM",
    "AccuracyWarning",
    "BatchedSolution",
    "FlowSolution",
    "JacobianSolution",
    "OrderFit",
    "ReferenceFlow",
    "ReferenceShard",
    "SolverFailure",
    "conditional_expectation",
    "conditional_nodes",
    "fit_order",
    "gauss_hermite",
    "gaussian_flow_map",
    "joint_expectation",
    "marginal_expectation",
    "mixture_log_cdf",
    "mixture_log_sf",
    "mixture_quantile",
    "posterior_quantile",
    "quantile_flow_map",
    "reference_pairs",
    "refine_until_asymptotic",
    "solve_batched",
    "step_sizes",
]
