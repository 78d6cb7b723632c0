"""The claims table (terminal and Markdown) and the path-quantities table of ``verify``."""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Sequence

import numpy as np

from ..claims import Check, ClaimResult
from ..exact import MixturePath, mixtures
from ..symbolic import Interpolant
from ._common import _format_number


def _check_columns(c: Check) -> tuple[str, str]:
    """``value`` and ``expected ± tolerance`` where the check is ``|value − expected|``
    (:meth:`Check.against`), else ``measured`` and ``≤ tolerance`` (a z-score's value and
    expected are in other units than its tolerance: "0.2443 ± 4.4", found in review)."""
    if c.value is not None and c.expected is not None and c.measured == abs(c.value - c.expected):
        return f"{c.value:.4g}", f"{c.expected:.4g} ± {c.tolerance:.2g}"
    return _format_number(c.measured), f"≤ {_format_number(c.tolerance)}"


def _width(text: str) -> int:
    """Terminal columns of ``text``: combining marks (the dot of ``α̇``) take none."""
    return sum(not unicodedata.combining(ch) for ch in text)


def _pad(text: str, width: int, align: str) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if align == ">" else text + fill


# The text table's columns (width, alignment); with their separators they add up to
# TABLE_WIDTH, so the table fits a 100-column terminal. Text wider than its column is
# wrapped onto continuation lines at spaces (words longer than a column are split). A
# claim's row has no case (its first check is the worst): its title spans both.
TABLE_WIDTH = 100
_COLUMNS = {
    "text": (45, "<"),  # a claim's id and title, or an indented check name
    "case": (23, "<"),
    "measured": (9, ">"),
    "expected": (11, ">"),
    "verdict": (7, "<"),
}
_SEPARATORS = {"case": " ", "measured": " ", "expected": " ", "verdict": "  "}


def _wrap(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    lines = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )
    return lines or [first.rstrip()]


def _table_row(cells: dict[str, str], first: str = "", rest: str = "") -> list[str]:
    """One logical row as one or more physical lines of at most ``TABLE_WIDTH`` columns;
    the text column's first line starts with ``first`` and its continuations with
    ``rest``. Without a ``"case"`` cell, the text spans the case column too."""
    columns = dict(_COLUMNS)
    if "case" not in cells:
        del columns["case"]
        columns["text"] = (_COLUMNS["text"][0] + 1 + _COLUMNS["case"][0], "<")
    wrapped = {
        name: _wrap(cells[name], width, first, rest)
        if name == "text"
        else _wrap(cells[name], width)
        for name, (width, _) in columns.items()
    }
    lines = []
    for i in range(max(map(len, wrapped.values()))):
        line = ""
        for name, (width, align) in columns.items():
            cell = wrapped[name][i] if i < len(wrapped[name]) else ""
            line += _SEPARATORS.get(name, "") + _pad(cell, width, align)
        lines.append(line.rstrip())
    return lines


def _claim_rows(r: ClaimResult, verbose: bool, statement: bool = False):
    """``(claim cells, [check cells])``: the claim's row (its title, with ``statement``
    followed by its statement), then each distinct check once (its worst case), or every
    check with ``verbose``, worst first."""
    claim = {
        "id": r.id,
        "text": f"{r.title}: {r.statement}" if statement and r.statement else r.title,
        "measured": _format_number(r.measured),
        "expected": "ratio ≤ 1",
        "verdict": "PASS" if r.passed else "FAIL",
    }
    checks, seen = [], set()
    for c in sorted(r.checks, key=lambda c: -c.ratio):
        if not verbose and c.name in seen:
            continue
        seen.add(c.name)
        measured, expected = _check_columns(c)
        checks.append(
            {
                "text": c.name,
                "case": c.case,
                "measured": measured,
                "expected": expected,
                "verdict": "pass" if c.passed else "FAIL",
            }
        )
    return claim, checks


def _claims_table(results: Sequence[ClaimResult], *, verbose: bool = False) -> str:
    """The claims as a text table of at most ``TABLE_WIDTH`` columns: per claim a row
    ``ID  title`` with its worst ratio measured/tolerance and verdict, then its checks
    (indented; the first is the worst), long text wrapped within its column."""
    header = _table_row(
        {
            "text": "id / claim / check",
            "case": "case",
            "measured": "measured",
            "expected": "expected",
            "verdict": "verdict",
        }
    )[0]
    lines = [header, "-" * TABLE_WIDTH]
    id_width = max([13, *(len(r.id) for r in results)]) + 2  # the catalogue's ids: ≤ 13
    for r in results:
        claim, checks = _claim_rows(r, verbose)
        lines += _table_row(claim, f"{r.id:<{id_width}}", " " * id_width)
        for cells in checks:
            lines += _table_row(cells, "  ", "    ")
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    """``text`` as one GitHub-Markdown table cell: emphasis, code and pipe characters
    escaped, so the claim's mathematics reads as written."""
    for ch in "\\`*_|<":
        text = text.replace(ch, "\\" + ch)
    return text


def _claims_markdown(results: Sequence[ClaimResult], *, verbose: bool = False) -> str:
    """The claims as a GitHub-Markdown table: title and full statement, one row per claim
    (bold id) followed by its checks."""
    lines = [
        "| id | claim / check | case | measured | expected | verdict |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in results:
        claim, checks = _claim_rows(r, verbose, statement=True)
        for cells in [{**claim, "id": f"**{r.id}**"}, *checks]:
            row = [cells.get("id", "")] + [
                _markdown_cell(cells.get(k, "")) for k in ("text", "case", "measured", "expected")
            ]
            row.append(f"**{cells['verdict']}**" if "id" in cells else cells["verdict"])
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


_PATH_HEADER = ("t", "x", "log p_t", "D", "E[x1|x]", "score", "v")


def _path_quantities() -> list[list[str]]:
    """The seed's 1-d path: log p_t, D, E[x1|x], score and velocity at a few (t, x)."""
    path = MixturePath(mixtures.seed_bimodal(), Interpolant.linear())
    x = np.array([[-1.0], [0.0], [2.0]])
    rows = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        cols = [
            path.log_prob(t, x),
            path.denoiser(t, x)[:, 0],
            path.expected_noise(t, x)[:, 0],
            path.score(t, x)[:, 0],
            path.velocity(t, x)[:, 0],
        ]
        for i in range(x.shape[0]):
            rows.append([f"{t:.2f}", f"{x[i, 0]:.1f}"] + [f"{c[i]:.6g}" for c in cols])
    return rows


def _path_quantities_table() -> str:
    widths = (5, 6, 12, 12, 12, 12, 12)
    header = " ".join(f"{h:>{w}}" for h, w in zip(_PATH_HEADER, widths, strict=True))
    lines = [header, "-" * len(header)]
    for row in _path_quantities():
        lines.append(" ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _path_quantities_markdown() -> str:
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in _PATH_HEADER) + " |",
        "|" + "---:|" * len(_PATH_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _path_quantities()]
    return "\n".join(lines)
