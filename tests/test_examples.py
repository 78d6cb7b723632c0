"""The examples run as documented, print the library's values, draw figures whose text
lies inside the figure, and reject bad input with one line and exit status 2."""

import ast
import importlib.util
import itertools
import json
import math
import pathlib
import runpy
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import cmverify as cmv

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> dict:
    return runpy.run_path(str(EXAMPLES / name))


def _assert_laid_out(fig) -> None:
    """Everything drawn lies inside the figure (nothing clipped at the edges), and no two
    titles or axis labels overlap. Measured with the Agg renderer that writes the PNG."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.get_size_inches()
    tight = fig.get_tightbbox(renderer)  # inches
    tol = 1.0 / fig.dpi  # one pixel
    assert tight.x0 >= -tol and tight.y0 >= -tol, tight
    assert tight.x1 <= width + tol and tight.y1 <= height + tol, (tight, width, height)
    texts = [getattr(fig, "_suptitle", None)]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
    boxes = []
    for text in texts:
        if text is None or not text.get_visible() or not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        assert fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, text.get_text()
        assert fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1, text.get_text()
        boxes.append((text.get_text(), box))
    for (name_a, a), (name_b, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (name_a, name_b)


def _printed_arrays(printed: str) -> dict:
    """{(t, quantity): array} from quickstart's lines ``t = …`` / ``  quantity …: [[…]]``."""
    values, t = {}, None
    for line in printed.splitlines():
        if line.startswith("t = "):
            t = float(line[4:])
        elif line.startswith("  ") and line.rstrip().endswith("]]"):
            name, _, array = line.strip().partition(":")
            values[(t, name.split()[0])] = np.array(ast.literal_eval(array.strip()))
    return values


def test_quickstart_prints_the_derived_values(capsys):
    """At t = 0, x_t = x0: v = E[x1] − x = −x, D = x, and at (1, 1) the score is that of
    the nearest modes (√2, √2): (√2 − 1)/0.2² per coordinate. At t = 1, x_t = x1 and the
    data mean is 0: v = x, D = 0, score = −x. At t = 0.5: the library's values."""
    namespace = _load("quickstart.py")
    assert namespace["main"]([]) == 0
    printed = capsys.readouterr().out
    values = _printed_arrays(printed)
    x = namespace["POINTS"]
    np.testing.assert_allclose(values[(0.0, "velocity")], -x, atol=1e-6)
    np.testing.assert_allclose(values[(0.0, "denoiser")], x, atol=1e-6)
    nearest = (np.sqrt(2) - 1) / 0.2**2
    np.testing.assert_allclose(values[(0.0, "score")], [[0, 0], [0, 0], [nearest] * 2], atol=1e-6)
    np.testing.assert_allclose(values[(1.0, "velocity")], x, atol=1e-6)
    np.testing.assert_allclose(values[(1.0, "denoiser")], 0 * x, atol=1e-6)
    np.testing.assert_allclose(values[(1.0, "score")], -x, atol=1e-6)
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    for name in ("velocity", "denoiser", "score"):
        expected = getattr(path, name)(0.5, x)
        np.testing.assert_allclose(values[(0.5, name)], expected, atol=6e-7)
    assert "-0.0" not in printed  # rounded zeros print as 0.0
    residual = float(printed.split("samples:")[1].split()[0])
    assert residual < 1e-9


def test_quickstart_plot_is_laid_out(tmp_path, capsys):
    """The old figure's panel titles stuck out of the top of the figure (clipped)."""
    image = pytest.importorskip("matplotlib.image")
    namespace = _load("quickstart.py")
    out = tmp_path / "quickstart.png"
    assert namespace["main"](["--plot", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert image.imread(out).shape[:2] == (460, 1200)
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    fig = namespace["figure"](path)
    assert [ax.get_title() for ax in fig.axes] == ["$t = 0.1$", "$t = 0.5$", "$t = 0.9$"]
    _assert_laid_out(fig)


def test_quickstart_plot_into_a_missing_folder(tmp_path, capsys):
    namespace = _load("quickstart.py")
    assert namespace["main"](["--plot", str(tmp_path / "nope" / "q.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot" in err


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
    """The seed figure: its 16 white trajectories start at x1 = Φ⁻¹((i + ½)/16) at t = 1
    and end at the quantile map F_data⁻¹(Φ(x1)) at t = 0 (FLOW-QUANTILE); its text lies
    inside the figure; the PNG is written at the figure's size."""
    image = pytest.importorskip("matplotlib.image")
    namespace = _load("probability_flow.py")
    out = tmp_path / "flow.png"
    assert namespace["main"](["--interpolant", interpolant, "--out", str(out)]) == 0
    assert image.imread(out).shape[:2] == (704, 924)

    interp = {"linear": cmv.Interpolant.linear, "trig": cmv.Interpolant.trig}[interpolant]()
    path = cmv.MixturePath(cmv.mixtures.seed_bimodal(), interp)
    fig = namespace["figure"](path)
    _assert_laid_out(fig)
    main_axes = fig.axes[2]
    assert main_axes.get_xlabel() == "$t$"
    lines = main_axes.get_lines()
    assert len(lines) == 16
    x1 = stats.norm.ppf((np.arange(16) + 0.5) / 16)
    start = np.array([line.get_ydata()[0] for line in lines])
    end = np.array([line.get_ydata()[-1] for line in lines])
    assert [line.get_xdata()[0] for line in lines] == [1.0] * 16
    assert [line.get_xdata()[-1] for line in lines] == [0.0] * 16
    np.testing.assert_allclose(start, x1, atol=1e-12)
    np.testing.assert_allclose(
        end, cmv.quantile_flow_map(path, x1[:, None], 1.0, 0.0)[:, 0], atol=1e-7
    )


@pytest.mark.parametrize(
    ("mixture", "message"),
    [
        ("nope", "unknown mixture 'nope'"),
        ("eight-gaussians", "'eight-gaussians' is 2-d"),
    ],
)
def test_probability_flow_rejects_a_mixture_in_one_line(tmp_path, mixture, message):
    """Exit status 2 and one line on stderr naming the valid (1-d) mixtures; no traceback."""
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "probability_flow.py"), "--mixture", mixture],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr
    valid = [n for n in cmv.mixtures.names() if cmv.mixtures.by_name(n).dim == 1]
    assert valid and all(name in run.stderr for name in valid)
    assert "eight_gaussians" not in run.stderr
    assert not list(tmp_path.iterdir())  # no figure written


def test_probability_flow_into_a_missing_folder(tmp_path, capsys):
    namespace = _load("probability_flow.py")
    assert namespace["main"](["--out", str(tmp_path / "nope" / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err


def _finite_numbers(value) -> list[float]:
    """Every number in a JSON value (NaN and infinities are refused when parsing)."""
    if isinstance(value, dict):
        return [v for item in value.values() for v in _finite_numbers(item)]
    if isinstance(value, list):
        return [v for item in value for v in _finite_numbers(item)]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return [float(value)] if is_number else []


def _refuse(constant: str):
    raise AssertionError(f"non-finite number in the JSON: {constant}")


def test_compare_my_model_example_gets_its_derived_errors(tmp_path, capsys):
    """The example's model is 0.95 f* at t > 0 and f* at t = 0 (data mean 0), so its error
    is 0.05 |f*(t, x_t)| with f*(t, x_t) ~ p_0: relative RMSE 0.05 at every t > 0 (up to
    sampling noise, bounded below), exactly 0 at t = 0 and on the boundary; it passes the
    default gate rtol = 0.1 (exit 0) and fails rtol = 0.04 at every t > 0 (exit 1)."""
    namespace = _load("compare_my_model.py")
    n, out = 300, tmp_path / "report"
    assert namespace["main"](["--out", str(out), "-n", str(n)]) == 0
    printed = capsys.readouterr().out
    files = ["comparison.json", "comparison.md", "error_vs_t.png", "samples.png", "arrows.png"]
    if importlib.util.find_spec("matplotlib") is None:
        files = files[:2]
    assert [line for line in printed.splitlines() if line.startswith("wrote ")] == [
        f"wrote {out / name}" for name in files
    ]
    report = json.loads((out / "comparison.json").read_text(), parse_constant=_refuse)
    assert all(math.isfinite(v) for v in _finite_numbers(report))
    assert report["passed"] is True and report["exceeded"] == [] and report["failures"] == []
    assert report["verdict"].startswith("PASSED: threshold RMSE ≤")
    assert report["threshold"]["rtol"] == 0.1 and report["path"] == "eight_gaussians / linear"
    # sqrt(mean |x0|²) over n i.i.d. data points, relative to sqrt(E|x0|²) = sqrt(tr Cov x0)
    # = sqrt(r² + 2s²): standard error sd(|x0|²) / (2 sqrt(n) E|x0|²), with
    # Var |x0|² = 4 s² r² + 4 s⁴ for x0 = μ_k + s z, |μ_k| = r = 2, s = 0.2, d = 2.
    r, s = 2.0, 0.2
    sem = math.sqrt(4 * s * s * r * r + 4 * s**4) / (2 * math.sqrt(n) * (r * r + 2 * s * s))
    rows = report["per_time"]
    assert [row["t"] for row in rows] == pytest.approx(np.linspace(0, 1, 11), abs=1e-12)
    assert rows[0]["rmse"] == 0.0 and rows[0]["max_error"] == 0.0
    for row in rows[1:]:
        assert row["relative_rmse"] == pytest.approx(0.05, rel=5 * sem), row["t"]
    # s = 0: f(0, X_{t→0}(x)) = f*(t, x), so the gap is the error itself; s > 0: 0.95 f*
    # is self-consistent, up to the reference's ODE accuracy
    assert rows[1]["self_consistency"] == pytest.approx(rows[1]["rmse"], rel=1e-6)
    assert all(row["self_consistency"] <= 1e-8 for row in rows[2:])
    assert report["boundary_max"] == 0.0
    for sampler in report["samples"]:
        assert sum(sampler["mode_frequencies"]) == pytest.approx(1.0)
        assert sampler["energy_distance"] >= 0.0
    assert (out / "comparison.md").read_text().startswith("# Comparison of `shrunk_model`")
    assert namespace["main"](["-n", "100", "--rtol", "0.04"]) == 1
    printed = capsys.readouterr().out
    assert "**FAILED: RMSE exceeds 0.0808 at t = 0.1" in printed and "wrote" not in printed


# -- examples/flow_maps.py (issue 12) ---------------------------------------------------


def _printed_gap(printed: str, label: str) -> float:
    """The number after ``label`` (``max gap`` / ``worst gap``) in the example's output."""
    (line,) = [line for line in printed.splitlines() if label in line]
    return float(line.split(label)[1].split()[0])


@pytest.mark.parametrize("interpolant", ["linear", "trig"])
def test_flow_maps_figure(tmp_path, capsys, interpolant):
    """The example prints gaps at rounding level and writes the figure at its size; its
    panels hold derived values: u(z, 0, 1) = z − X_{1→0}(z) (checked against
    ReferenceFlow.map, a different integration than average_velocity); u(z, 1, 1) =
    v(1, z) = α̇_1 E[x0] + σ̇_1 z, i.e. z on the linear path and 0 on the trig one
    (E[x0] = 0, σ̇_1 = 1 resp. 0); det ∇X_{1→0}(x) = p_1(x)/p_0(X_{1→0}(x)) on the
    log–log panel, with p_1 = N(0, I) for both interpolants; no lattice point at the
    origin; and its text lies inside the figure."""
    image = pytest.importorskip("matplotlib.image")
    from matplotlib.quiver import Quiver

    from cmverify.reference import ReferenceFlow

    namespace = _load("flow_maps.py")
    out = tmp_path / "maps.png"
    argv = ["--interpolant", interpolant, "--grid", "6", "--points", "40", "--seed", "3"]
    assert namespace["main"]([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1] == f"wrote {out}"
    assert _printed_gap(printed, "max gap") < 1e-12
    assert _printed_gap(printed, "worst gap") < 1e-8
    assert image.imread(out).shape[:2] == (880, 1200)

    interp = {"linear": cmv.Interpolant.linear, "trig": cmv.Interpolant.trig}[interpolant]()
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians(), interp)
    measured = namespace["measure"](path, grid=6, points=40, seed=3)
    assert measured.log_det_gap == pytest.approx(_printed_gap(printed, "worst gap"), rel=0.01)
    fig = namespace["figure"](measured)
    _assert_laid_out(fig)
    quivers = [c for ax in fig.axes[:4] for c in ax.collections if isinstance(c, Quiver)]
    assert len(quivers) == 4
    z = np.asarray(quivers[0].get_offsets())
    assert z.shape == (36, 2) and np.abs(z).sum(axis=1).min() > 0.5  # cell centres, no origin
    np.testing.assert_allclose(np.unique(z[:, 0]), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    first = np.stack([quivers[0].U, quivers[0].V], axis=1)
    np.testing.assert_allclose(first, z - ReferenceFlow(path).map(z, 1.0, 0.0), atol=1e-8)
    last = np.stack([quivers[3].U, quivers[3].V], axis=1)
    np.testing.assert_allclose(last, z if interpolant == "linear" else 0 * z, atol=1e-12)
    assert fig.axes[3].get_title().endswith("$= 0$") == (interpolant == "trig")

    check = fig.axes[5]
    ratio, det = check.get_lines()[0].get_data()
    assert ratio.size == 40 and check.get_xscale() == check.get_yscale() == "log"
    np.testing.assert_allclose(np.log(det), np.log(ratio), atol=1e-8)
    x1 = measured.samples
    log_p1 = -0.5 * (x1**2).sum(axis=1) - np.log(2 * np.pi)
    log_p0 = cmv.mixtures.eight_gaussians().log_prob(measured.images)
    np.testing.assert_allclose(np.log(ratio), log_p1 - log_p0, atol=1e-10)
    assert f"= {measured.log_det_gap:.1e}" in check.get_title()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--grid", "5"], "--grid"),
        (["--grid", "2"], "--grid"),
        (["--grid", "many"], "--grid"),
        (["--points", "0"], "--points"),
        (["--seed", "-1"], "--seed"),
        (["--interpolant", "cosine"], "--interpolant"),
        (["--out", "figure.xyz"], "--out"),
        (["--out", "nope/figure.png"], "--out"),
        (["--out", "."], "--out"),
    ],
)
def test_flow_maps_rejects_bad_input_in_one_line(tmp_path, monkeypatch, capsys, argv, option):
    """Exit status 2, nothing on stdout, one line on stderr naming the option, no file."""
    monkeypatch.chdir(tmp_path)
    namespace = _load("flow_maps.py")
    assert namespace["main"](argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and option in captured.err, captured.err
    assert captured.err.startswith("flow_maps.py: error: ")
    assert not list(tmp_path.iterdir())


def test_flow_maps_bad_option_from_the_shell(tmp_path):
    """The script itself (not only main) exits 2 with one line and no traceback."""
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "flow_maps.py"), "--grid", "7"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "--grid" in run.stderr, run.stderr
    assert not list(tmp_path.iterdir())


def test_compare_flow_matching_example_gets_its_derived_errors(tmp_path, capsys):
    """The example's network is ``−0.97 v(1 − τ, x)`` in flow_matching's convention, so in
    ours ``|v_θ − v| = 0.03 |v|`` pointwise: relative RMSE 0.03 at every t (exactly, to
    rounding); the loss is floor + excess within sampling noise."""
    namespace = _load("compare_flow_matching.py")
    assert namespace["main"](["-n", "300", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "wrote " in printed and (tmp_path / "velocity_comparison.json").exists()
    report = json.loads((tmp_path / "velocity_comparison.json").read_text(), parse_constant=_refuse)
    for row in report["per_time"]:
        assert abs(row["relative_rmse"] - 0.03) < 1e-12
        gap = row["model_loss"] - row["loss_floor"] - row["excess_loss"]
        assert abs(gap) < 5 * row["model_loss_se"]
    assert report["induced"]["rmse"] > 1e-3


def test_compare_meanflow_example_is_an_exact_flow_of_the_wrong_data(capsys):
    """The moment-matched Gaussian's average velocity is an exact flow map (of another
    path): its semigroup and Eulerian residuals are at rounding (the Eulerian one by
    torch JVP), and a k-step chain lands where one step does."""
    torch = pytest.importorskip("torch")
    namespace = _load("compare_meanflow.py")
    net = namespace["MomentMatchedMeanFlow"](namespace["PATH"]).to(torch.float64)
    from cmverify.compare import compare_flow_map

    pairs = [(1.0, 0.0), (1.0, 0.5), (0.6, 0.2)]
    result = compare_flow_map(
        net, namespace["PATH"], kind="meanflow", time_inputs="t,t-r", pairs=pairs, n=200
    )
    assert result.ok
    assert all(r.semigroup_rms < 1e-13 for r in result.pairs if r.semigroup_rms is not None)
    assert all(r.eulerian_rms < 1e-13 and r.eulerian_method == "jvp" for r in result.pairs)
    assert result.at(1.0, 0.0).relative_rmse > 0.1  # wrong data, far from the modes' map
    errors = [c.rmse for c in result.chains]
    assert max(errors) - min(errors) < 1e-9 * max(errors)
