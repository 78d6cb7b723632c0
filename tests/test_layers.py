"""The floors of the package (``cmverify.LAYERS``, DESIGN.md): every module imports only
from its own floor, the floors below it, and the root's private helpers.

The table is the folder names: each subpackage is a floor, and ``cmverify.LAYERS`` orders
them. A module of another floor is reached through that floor's public ``__init__``,
never through its private ``_modules``. At the root sit only modules that belong to no
floor: the command line (the ``cli`` package, which may import anything), the package
``__init__`` and private helpers that import no other part of cmverify.
"""

import ast
import pathlib
import re

import pytest

import cmverify

PACKAGE = pathlib.Path(cmverify.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: Root modules (and the ``cli`` package) that belong to no floor and may import any.
ROOT_EDGE = {"__init__", "__main__", "_legacy"}  # _legacy: the old paths of every floor
EDGE_PACKAGES = {"cli"}
#: Root helpers: private, importing nothing of cmverify but each other.
ROOT_HELPERS = {"_validation", "_threads", "_io", "_memory", "_rows"}

#: The longest a module may grow (issue 11); split it before it does.
MAX_LINES = 400


def floor_of(parts: tuple[str, ...]) -> str:
    """``"exact"`` for ``("exact", "_path")``; the module's own name at the root."""
    return parts[0]


def rank(floor: str) -> int:
    return cmverify.LAYERS.index(floor)


def imported_modules(path: pathlib.Path):
    """(absolute parts of each cmverify module ``path`` imports, the statement's line)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    package = list(parts[:-1])  # the package the file sits in ('__init__' is its own)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("cmverify"), (path, "absolute import")
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            assert not (node.module or "").startswith("cmverify"), (path, "absolute import")
            continue
        base = package[: len(package) - (node.level - 1)]
        target = base + (node.module.split(".") if node.module else [])
        if node.module is None or len(target) == 1:  # from .. import a, b: a, b may be modules
            names = [alias.name for alias in node.names]
            for name in names:
                yield (
                    (tuple(target) if target else (name,)) + ((name,) if target else ()),
                    node.lineno,
                )
        else:
            yield tuple(target), node.lineno


def test_the_folders_are_the_layer_table():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders == set(cmverify.LAYERS) | EDGE_PACKAGES


def test_only_edge_modules_and_private_helpers_sit_at_the_root():
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root == ROOT_EDGE | ROOT_HELPERS


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_layers(source):
    parts = source.relative_to(PACKAGE).with_suffix("").parts
    for target, line in imported_modules(source):
        where = f"{source.relative_to(PACKAGE)}:{line} imports cmverify.{'.'.join(target)}"
        if (len(parts) == 1 and parts[0] in ROOT_EDGE) or parts[0] in EDGE_PACKAGES:
            continue  # the command line and the package root see every floor
        if target[0] in ROOT_HELPERS or target[0] == "__version__":
            continue
        if len(parts) == 1:  # a root helper
            assert target[0] in ROOT_HELPERS, where
            continue
        own = floor_of(parts)
        assert target[0] in cmverify.LAYERS, where
        assert rank(target[0]) <= rank(own), where
        if target[0] != own:  # another floor: through its public surface only
            assert not any(p.startswith("_") for p in target[1:]), where


#: Modules still being split (issue 11, in progress): strict xfail, so each entry must go
#: as soon as its module is short enough.
BEING_SPLIT: set[str] = set()


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="being split"))
        if str(p.relative_to(PACKAGE)) in BEING_SPLIT
        else p
        for p in SOURCES
    ],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_module_is_over_the_length_limit(source):
    lines = len(source.read_text().splitlines())
    assert lines <= MAX_LINES, f"{source.relative_to(PACKAGE)} has {lines} lines"


def test_a_violation_is_caught(tmp_path, monkeypatch):
    """The checker itself: an upward import and a private cross-floor import both fail."""
    fake = tmp_path / "cmverify"
    (fake / "exact").mkdir(parents=True)
    bad = fake / "exact" / "_bad.py"
    bad.write_text("from ..claims import CATALOGUE\nfrom ..symbolic._interpolant import X\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = list(imported_modules(bad))
    assert sorted(found, key=lambda item: item[1]) == [
        (("claims", "CATALOGUE"), 1),
        (("symbolic", "_interpolant"), 2),
    ]
    with pytest.raises(AssertionError, match=r"imports cmverify\.claims"):
        test_imports_respect_layers(bad)
    bad.write_text("from ..symbolic._interpolant import X\n")
    with pytest.raises(AssertionError, match=r"symbolic\._interpolant"):
        test_imports_respect_layers(bad)


def test_the_readme_layout_is_the_tree():
    """README's "Layout" table: one row per floor, in ``cmverify.LAYERS`` order, each
    listing exactly the modules in that folder."""
    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme.split("<!-- layout:")[1].split("\n\n")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `cmverify/")]
    floors = [row.split("`")[1].removeprefix("cmverify/").rstrip("/") for row in rows]
    assert floors == list(cmverify.LAYERS)
    for floor, row in zip(floors, rows, strict=True):
        listed = set(re.findall(r"`(\w+)`", row.rsplit("|", 2)[1]))
        present = {p.stem for p in (PACKAGE / floor).glob("*.py")} - {"__init__"}
        assert listed == present, (floor, listed ^ present)
