"""The examples run as documented."""

import pathlib
import runpy
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_plots(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "quickstart.png"
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--plot", str(out)])
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "continuity residual" in printed
    assert out.stat().st_size > 10_000


def test_readme_api_tour_runs():
    """The README's Python blocks run as written, in order, in one namespace."""
    import re

    readme = (EXAMPLES.parent / "README.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "def test_" not in b and "mypackage" not in b
    ]
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_probability_flow_figure(tmp_path, interpolant):
    """The seed figure's example writes its PNG (into a temporary folder)."""
    pytest.importorskip("matplotlib")
    namespace = runpy.run_path(str(EXAMPLES / "probability_flow.py"))
    out = tmp_path / "flow.png"
    assert namespace["main"](["--interpolant", interpolant, "--out", str(out)]) == 0
    assert out.stat().st_size > 20_000


def test_probability_flow_figure_rejects_2d_mixtures(tmp_path):
    pytest.importorskip("matplotlib")
    namespace = runpy.run_path(str(EXAMPLES / "probability_flow.py"))
    with pytest.raises(SystemExit):
        namespace["main"](["--mixture", "eight-gaussians", "--out", str(tmp_path / "x.png")])


def test_compare_my_model_example(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    namespace = runpy.run_path(str(EXAMPLES / "compare_my_model.py"))
    namespace["main"](["--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| 0.5 |" in printed and (tmp_path / "arrows.png").exists()
