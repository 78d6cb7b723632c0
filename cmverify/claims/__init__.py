"""Claims layer: each claim of DESIGN.md's catalogue as a function that *measures* —
a fitted order, a leading-coefficient ratio, an agreement to rounding — and returns
:class:`~cmverify.claims.Check` objects carrying the measurement, the prediction, the
error budget and the verdict.

Modules: :mod:`.local` (EULER-LOCAL, SWAP-LOCAL, CT-LOCAL), :mod:`.induction`
(CT-GLOBAL, CT-GAUSS, SONG-T1), :mod:`.losses` (SONG-T2), :mod:`.sampling`
(MULTISTEP), :mod:`.velocity` (FLOW-VELOCITY's probability-flow form),
:mod:`.functions` (the smooth test functions ``F``).
"""

from ._functions import CubicMap, TanhNetwork, TimeTanhNetwork
from ._induction import ct_gauss, ct_global, song_t1
from ._local import DEFAULT_DELTAS, bulk_points, ct_local, ct_local_target, euler_local, swap_local
from ._losses import loss_difference, song_t2
from ._multistep import multistep
from ._results import Check, ClaimResult
from ._runner import BatteryConfig, battery_cases, run_battery
from ._velocity import flow_velocity_forms

__all__ = [
    "DEFAULT_DELTAS",
    "BatteryConfig",
    "Check",
    "ClaimResult",
    "CubicMap",
    "TanhNetwork",
    "TimeTanhNetwork",
    "battery_cases",
    "bulk_points",
    "ct_gauss",
    "ct_global",
    "ct_local",
    "ct_local_target",
    "euler_local",
    "flow_velocity_forms",
    "loss_difference",
    "multistep",
    "run_battery",
    "song_t1",
    "song_t2",
    "swap_local",
]
