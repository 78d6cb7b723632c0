"""Claims layer: DESIGN.md's claim catalogue as objects that *measure* — a fitted order,
a leading-coefficient ratio, an agreement to rounding — each measurement a
:class:`Check` carrying the value, the prediction, the error budget and the verdict.

- :data:`CATALOGUE`: claim ID → :class:`Claim` (``id``, one-line ``title``,
  ``statement``, ``cases``, ``measure``), in DESIGN.md's order; :func:`catalogue_markdown`
  renders it as the README's table.
- A :class:`Case` names what a claim is measured on (a mixture path, built on first use)
  and whether the quick battery runs it; :class:`BatteryConfig` holds the settings — the
  quick/full policy in one place (:meth:`BatteryConfig.quick_config`).
- The runner (:func:`run_battery`, :func:`run_claim`, :func:`run_case`) iterates claims ×
  cases, seeds each case from (seed, claim id, case name) (:func:`case_seed`), stamps the
  case's name on the checks, times them and reports progress. A measuring function
  ``measure(case, settings, rng) -> checks`` only measures.
- The measurements, by module: ``_boundary`` (INT-BOUNDARY, PARAM-BOUNDARY), ``_flows``
  and ``_velocity`` (FLOW-VELOCITY, FLOW-GAUSS, FLOW-QUANTILE, FLOW-MAP), ``_local``
  (EULER-LOCAL, SWAP-LOCAL, CT-LOCAL), ``_induction`` (CT-GLOBAL, CT-GAUSS, SONG-T1),
  ``_losses`` (SONG-T2), ``_multistep`` (MULTISTEP); ``_functions`` holds the smooth test
  functions ``F``. Their public functions (:func:`euler_local`, :func:`ct_gauss`, …)
  take a path and explicit points or step counts, for tests and users.

A paper's repository states its own claim as a :class:`Claim` and runs it with
``pytest --cmverify-claims`` (see :mod:`cmverify.testing._plugin`).
"""

from ._case import BatteryConfig as BatteryConfig
from ._case import Case as Case
from ._case import battery_cases as battery_cases
from ._catalogue import CATALOGUE as CATALOGUE
from ._catalogue import Claim as Claim
from ._catalogue import Measure as Measure
from ._catalogue import catalogue_markdown as catalogue_markdown
from ._functions import CubicMap as CubicMap
from ._functions import TanhNetwork as TanhNetwork
from ._functions import TimeTanhNetwork as TimeTanhNetwork
from ._induction import ct_gauss as ct_gauss
from ._induction import ct_global as ct_global
from ._induction import song_t1 as song_t1
from ._local import DEFAULT_DELTAS as DEFAULT_DELTAS
from ._local import bulk_points as bulk_points
from ._local import ct_local as ct_local
from ._local import ct_local_target as ct_local_target
from ._local import euler_local as euler_local
from ._local import swap_local as swap_local
from ._losses import loss_difference as loss_difference
from ._losses import song_t2 as song_t2
from ._multistep import multistep as multistep
from ._results import Check as Check
from ._results import ClaimResult as ClaimResult
from ._results import checks_table as checks_table
from ._runner import Progress as Progress
from ._runner import case_seed as case_seed
from ._runner import run_battery as run_battery
from ._runner import run_case as run_case
from ._runner import run_claim as run_claim
from ._velocity import flow_velocity_forms as flow_velocity_forms

__all__ = [
    "CATALOGUE",
    "DEFAULT_DELTAS",
    "BatteryConfig",
    "Case",
    "Check",
    "Claim",
    "ClaimResult",
    "CubicMap",
    "Measure",
    "Progress",
    "TanhNetwork",
    "TimeTanhNetwork",
    "battery_cases",
    "bulk_points",
    "case_seed",
    "catalogue_markdown",
    "checks_table",
    "ct_gauss",
    "ct_global",
    "ct_local",
    "ct_local_target",
    "euler_local",
    "flow_velocity_forms",
    "loss_difference",
    "multistep",
    "run_battery",
    "run_case",
    "run_claim",
    "song_t1",
    "song_t2",
    "swap_local",
]
