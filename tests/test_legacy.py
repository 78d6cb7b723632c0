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
    assert module is importlib.import_module(new)
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
