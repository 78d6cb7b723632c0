"""The layers of DESIGN.md: a module imports only from its own layer or those above it."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cmverify"

#: Layer of each module (0 = utilities, 1 = symbolic, 2 = exact, 3 = reference,
#: 4 = claims); "edge" modules (CLI, battery, strategies) may import anything.
LAYERS = {
    "_validation": 0,
    "_memory": 0,
    "_threads": 0,
    "_io": 0,
    "results": 0,
    "numdiff": 1,
    "symbolic": 1,
    "interpolant": 1,
    "interpolants": 1,
    "derivations": 1,
    "proofs": 1,
    "mixture": 2,
    "mixtures": 2,
    "path": 2,
    "identities": 2,
    "kinematics": 2,
    "batched_rk": 3,
    "flow": 3,
    "_extended": 3,
    "gaussian_flow": 3,
    "quantile": 3,
    "quadrature": 3,
    "orders": 3,
    "claims": 4,
}
EDGE = {
    "__init__",
    "__main__",
    "cli",
    "battery",
    "strategies",
    # torch / user-facing layer: compare, model adapters, test helpers, plugin, figures
    "compare",
    "models",
    "testing",
    "pytest_plugin",
    "_compare_plots",
    "train",
}


def module_name(path: pathlib.Path) -> str:
    """``claims`` for everything inside the claims package, else the file's stem."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else path.stem


def imports_of(path: pathlib.Path):
    """Package-internal modules that ``path`` imports (resolved to top-level names)."""
    inside = len(path.relative_to(PACKAGE).parts) > 1
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        top_level = node.level == (2 if inside else 1)
        if not top_level:  # a sibling inside the same subpackage
            continue
        if node.module:
            yield node.module.split(".")[0]
        else:
            yield from (alias.name for alias in node.names)


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    names = {module_name(p) for p in SOURCES}
    assert names <= set(LAYERS) | EDGE, names - set(LAYERS) - EDGE


@pytest.mark.parametrize(
    "source",
    [p for p in SOURCES if module_name(p) in LAYERS],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_imports_respect_layers(source):
    module = module_name(source)
    for imported in imports_of(source):
        assert imported in LAYERS, f"{source.name} imports edge module {imported}"
        assert LAYERS[imported] <= LAYERS[module], (
            f"{source.name} (layer {LAYERS[module]}) imports {imported}"
        )
