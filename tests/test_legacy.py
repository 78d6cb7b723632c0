"""Old flat import paths (cmverify ≤ 0.1) still work for one release: the same module
object as the new private module, with a DeprecationWarning naming the public path; the
contract's catalogue modules resolve without a warning."""

import importlib
import importlib.util
import subprocess
import sys
import warnings

import pytest

from cmverify import _legacy

DEPRECATED = sorted(name for name, (_, public) in _legacy.ALIASES.items() if public is not None)
PUBLIC = sorted(name for name, (_, public) in _legacy.ALIASES.items() if public is None)


def _fresh_import(name: str) -> tuple[str, str]:
    """Import ``name`` in a new interpreter; (the module's ``__name__``, the warnings)."""
    code = (
        "import warnings, importlib\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        f"    m = importlib.import_module({name!r})\n"
        "print(m.__name__)\n"
        "print('|'.join(f'{x.category.__name__}: {x.message}' for x in w))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return out[0], out[1] if len(out) > 1 else ""


@pytest.mark.parametrize("old", DEPRECATED)
def test_an_old_path_is_the_new_module_and_warns(old):
    new, public = _legacy.ALIASES[old]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
    target = importlib.import_module(new)
    if old in _legacy.EXTRAS:  # a forwarding module: the new module's names plus extras
        assert all(getattr(module, n) is getattr(target, n) for n in target.__all__)
    else:
        assert module is target
        assert module.__spec__.name == new  # the real module's spec is left intact
    assert importlib.util.find_spec(public) is not None


@pytest.mark.parametrize("old", ["cmverify.flow", "cmverify.claims.local"])
def test_the_warning_names_the_public_path(old):
    name, caught = _fresh_import(old)
    assert name == _legacy.ALIASES[old][0]
    assert caught == (
        f"DeprecationWarning: {old} is deprecated and will be removed; "
        f"import from {_legacy.ALIASES[old][1]}"
    )


@pytest.mark.parametrize("old", PUBLIC)
def test_contract_modules_resolve_without_a_warning(old):
    name, caught = _fresh_import(old)
    assert name == _legacy.ALIASES[old][0]
    assert caught == ""


def test_old_names_still_give_the_same_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cmverify.flow import ReferenceFlow
        from cmverify.path import MixturePath
    import cmverify as cmv

    assert ReferenceFlow is cmv.ReferenceFlow
    assert MixturePath is cmv.MixturePath
    assert cmv.mixtures.seed_bimodal().dim == 1


def test_an_unknown_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("cmverify.no_such_module")
    import cmverify

    with pytest.raises(AttributeError, match="no_such_name"):
        cmverify.no_such_name  # noqa: B018


#: ``__all__`` of each flat module at 0.1 (commit 25fd99b, before the move), read from git.
OLD_EXPORTS = {
    "cmverify.flow": "AccuracyWarning FlowSolution ReferenceFlow SolverFailure".split(),
    "cmverify.path": "MixturePath PosteriorMixture".split(),
    "cmverify.mixture": "GaussianMixture".split(),
    "cmverify.interpolant": "Coefficients Interpolant".split(),
    "cmverify.numdiff": "divergence gradient hessian jacobian stencil time_derivative".split(),
    "cmverify.derivations": "ALPHA_T SIGMA_DATA SIGMA_T angular_speed_squared consistency_scalings consistency_scalings_numeric ct_gauss_angular_speed ct_gauss_rate drift_and_diffusion probability_flow_coefficients probability_flow_identity".split(),
    "cmverify.identities": "continuity_residual decomposition_residual score_gradient_residual spatial_step time_step velocity_decomposition_residual".split(),
    "cmverify.kinematics": "acceleration delta_covariance expected_gamma".split(),
    "cmverify.batched_rk": "BatchedSolution SolverFailure solve_batched".split(),
    "cmverify.gaussian_flow": "gaussian_flow_map".split(),
    "cmverify.quantile": "mixture_log_cdf mixture_log_sf mixture_quantile quantile_flow_map".split(),
    "cmverify.quadrature": "MAX_DIM conditional_expectation gauss_hermite joint_expectation marginal_expectation".split(),
    "cmverify.orders": "OrderFit fit_order refine_until_asymptotic step_sizes".split(),
    "cmverify.results": "Check ClaimResult".split(),
    "cmverify.battery": "BatteryConfig battery_cases run_battery".split(),
    "cmverify.models": "FAILURE_KINDS TIME_FORMATS ModelAdapter ModelError ModelFailure".split(),
    "cmverify.strategies": "EXTREME_VARIANCES FAR_MAGNITUDES extreme_mixtures far_points interpolants mixtures named_interpolants paths points times".split(),
    "cmverify.mixtures": "EIGHT_GAUSSIANS_RADIUS EIGHT_GAUSSIANS_STD by_name eight_gaussians gaussian mild_bimodal names random_mixture seed_bimodal".split(),
    "cmverify.interpolants": "SINGULAR by_name cos_linear linear names quadratic sqrt trig".split(),
    "cmverify.claims.local": "DEFAULT_DELTAS bulk_points ct_local ct_local_target euler_local swap_local".split(),
    "cmverify.claims.induction": "ct_gauss ct_global song_t1".split(),
    "cmverify.claims.losses": "loss_difference song_t2".split(),
    "cmverify.claims.sampling": "FALSE_ALARM multistep multistep_samples".split(),
    "cmverify.claims.velocity": "flow_velocity_forms".split(),
    "cmverify.claims.functions": "CubicMap TanhNetwork TimeTanhNetwork".split(),
    "cmverify.proofs.core": "Derivation Step article_latex derivation_latex expr_latex latex_prose markdown_prose math_latex tex_width".split(),
    "cmverify.proofs.documents": "DERIVATIONS derivations".split(),
    "cmverify.train.model": "MLP ConsistencyModel boundary_scalings".split(),
    "cmverify.train.losses": "cd_pairs consistency_loss ct_pairs distance".split(),
    "cmverify.train.trainer": "TrainConfig TrainResult TrainingInterrupted sample time_index_probabilities train".split(),
    "cmverify.train.checkpoint": "CHECKPOINT_FILES check_writable interrupts_held write_checkpoint".split(),
}


@pytest.mark.parametrize("old", sorted(OLD_EXPORTS))
def test_every_name_an_old_module_exported_still_imports_from_it(old):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(old)
        missing = [name for name in OLD_EXPORTS[old] if not hasattr(module, name)]
    assert not missing, (old, missing)


def test_the_old_multistep_sampler_still_samples_p_t():
    """0.1's ``claims.sampling.multistep_samples`` (path, f, times, n, rng) → the states."""
    import numpy as np

    import cmverify as cmv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cmverify.claims.sampling import multistep_samples
    path = cmv.MixturePath(cmv.mixtures.gaussian())
    flow = cmv.ReferenceFlow(path)
    states = multistep_samples(path, flow.consistency, (1.0, 0.5), 4000, np.random.default_rng(0))
    assert [s.shape for s in states] == [(4000, path.dim)] * 2
    # x_0.5 ~ p_0.5 = N(α μ, α² Σ + σ² I): its mean within 5 standard errors
    marginal = path.marginal(0.5)
    err = states[1].mean(axis=0) - marginal.mean()
    assert np.all(np.abs(err) < 5 * np.sqrt(np.diag(marginal.covariance()) / 4000))


def test_from_the_package_the_warning_points_at_the_caller(tmp_path):
    script = tmp_path / "user.py"
    script.write_text("from cmverify import flow\n")
    err = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    ).stderr
    assert f"{script}:1: DeprecationWarning: cmverify.flow is deprecated" in err
