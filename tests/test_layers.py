"""The layers of DESIGN.md: a module imports only from its own layer or those above it."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cmverify"

#: Layer of each module (0 = utilities, 1 = symbolic, 2 = exact, 3 = reference, …; "edge" modules may
#: import anything).
LAYERS = {
    "_validation": 0,
    "_memory": 0,
    "results": 0,
    "numdiff": 1,
    "symbolic": 1,
    "interpolant": 1,
    "mixture": 2,
    "mixtures": 2,
    "path": 2,
    "identities": 2,
    "batched_rk": 3,
    "flow": 3,
    "gaussian_flow": 3,
    "quantile": 3,
}
EDGE = {"__init__", "__main__", "cli", "battery", "strategies"}


def imports_of(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                yield node.module.split(".")[0]
            else:
                yield from (alias.name for alias in node.names)


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules <= set(LAYERS) | EDGE, modules - set(LAYERS) - EDGE


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_respect_layers(module):
    for imported in imports_of(PACKAGE / f"{module}.py"):
        assert imported in LAYERS, f"{module} imports edge module {imported}"
        assert LAYERS[imported] <= LAYERS[module], (
            f"{module} (layer {LAYERS[module]}) imports {imported}"
        )
