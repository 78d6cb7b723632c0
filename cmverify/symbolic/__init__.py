"""Symbolic layer: interpolants as SymPy expressions, their boundary proofs and
generated numerics, the catalogue of named interpolants, finite-difference stencils and
the SymPy derivations behind the claims. Depends on SymPy and NumPy only.
"""

from . import interpolants as interpolants
from ._derivations import ALPHA_T as ALPHA_T
from ._derivations import LAMBDA as LAMBDA
from ._derivations import SIGMA_DATA as SIGMA_DATA
from ._derivations import SIGMA_T as SIGMA_T
from ._derivations import angular_speed_squared as angular_speed_squared
from ._derivations import consistency_scalings as consistency_scalings
from ._derivations import consistency_scalings_numeric as consistency_scalings_numeric
from ._derivations import ct_gauss_angular_speed as ct_gauss_angular_speed
from ._derivations import ct_gauss_rate as ct_gauss_rate
from ._derivations import drift_and_diffusion as drift_and_diffusion
from ._derivations import probability_flow_coefficients as probability_flow_coefficients
from ._derivations import probability_flow_identity as probability_flow_identity
from ._expressions import BOUNDARY_CONDITIONS as BOUNDARY_CONDITIONS
from ._expressions import InterpolantExpressions as InterpolantExpressions
from ._expressions import derive_interpolant as derive_interpolant
from ._expressions import numeric_function as numeric_function
from ._expressions import positive_inside as positive_inside
from ._expressions import prove_boundary_conditions as prove_boundary_conditions
from ._interpolant import Coefficients as Coefficients
from ._interpolant import Interpolant as Interpolant
from ._numdiff import divergence as divergence
from ._numdiff import gradient as gradient
from ._numdiff import hessian as hessian
from ._numdiff import jacobian as jacobian
from ._numdiff import stencil as stencil
from ._numdiff import time_derivative as time_derivative
from ._numdiff import time_stencil as time_stencil

__all__ = [
    "ALPHA_T",
    "BOUNDARY_CONDITIONS",
    "LAMBDA",
    "SIGMA_DATA",
    "SIGMA_T",
    "Coefficients",
    "Interpolant",
    "InterpolantExpressions",
    "angular_speed_squared",
    "consistency_scalings",
    "consistency_scalings_numeric",
    "ct_gauss_angular_speed",
    "ct_gauss_rate",
    "derive_interpolant",
    "divergence",
    "drift_and_diffusion",
    "gradient",
    "hessian",
    "interpolants",
    "jacobian",
    "numeric_function",
    "positive_inside",
    "probability_flow_coefficients",
    "probability_flow_identity",
    "prove_boundary_conditions",
    "stencil",
    "time_derivative",
    "time_stencil",
]
