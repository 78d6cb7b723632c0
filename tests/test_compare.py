"""compare: users' models against the exact flow map."""

import importlib.util
import json
import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats
from scipy.spatial.distance import cdist

import cmverify as cmv
from cmverify.cli import main
from cmverify.compare import (
    Comparison,
    ModelAdapter,
    ModelError,
    ModelFailure,
    _reference,
    compare,
    energy_distance,
)

PATH = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
FLOW = cmv.ReferenceFlow(PATH)
TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)
N = 400


def exact(t, x):
    return FLOW.consistency(t, x)


@pytest.mark.parametrize("mixture", ["gaussian", "seed_bimodal"])
def test_exact_consistency_function_scores_at_most_1e_8(mixture):
    """The exact f*, computed independently of compare's reference (the Gaussian closed
    form; the 1-d quantile map), scores ≤ 1e-8 at every t, is self-consistent and keeps the
    boundary; its one-step samples hit the modes with the data's weights (χ² test,
    false-alarm rate 1e-6)."""
    path = cmv.MixturePath(cmv.mixtures.by_name(mixture), cmv.Interpolant.trig())
    mix = path.mixture

    def closed_form(t, x):
        if mixture == "gaussian":
            return cmv.gaussian_flow_map(mix.means[0], mix.covs[0], path.interpolant, x, t, 0.0)
        return cmv.quantile_flow_map(path, x, t, 0.0)

    result = compare(closed_form, path, TIMES, n=N, n_samples=500)
    assert result.ok
    for r in result.per_time:
        assert r.max_error <= 1e-8
        assert r.self_consistency is None or r.self_consistency <= 1e-8
    assert result.boundary_max <= 1e-12
    one_step = result.samples[0]
    if one_step.mode_frequencies is not None:
        counts = np.array(one_step.mode_frequencies) * 500
        assert stats.chisquare(counts, 500 * np.array(one_step.mode_weights)).pvalue > 1e-6


@pytest.mark.parametrize("eps", [1e-3, 0.05])
def test_a_bias_at_one_time_is_reported_with_its_size(eps):
    shift = eps * np.array([0.6, 0.8])

    def biased(t, x):
        return exact(t, x) + (shift if t == 0.5 else 0.0)

    result = compare(biased, PATH, TIMES, n=N, sample_quality=False)
    assert result.at(0.5).rmse == pytest.approx(eps, rel=0.05)
    assert result.at(0.25).rmse <= 1e-8 and result.at(0.75).rmse <= 1e-8


def test_x_t_signature_and_time_formats():
    def xt_model(x, t):
        assert t.shape == (x.shape[0], 1)
        return exact(t[0, 0], x)

    result = compare(
        xt_model, PATH, TIMES, n=N, signature="x,t", time_format="column", sample_quality=False
    )
    assert result.ok and max(r.max_error for r in result.per_time) <= 1e-8


def test_nan_inf_and_wrong_shape_are_reported_not_averaged():
    def nan_far_out(t, x):
        out = exact(t, x)
        out[np.linalg.norm(x, axis=1) > 2.5] = np.nan
        return out

    result = compare(nan_far_out, PATH, TIMES, n=N, sample_quality=False)
    assert not result.ok
    failed = [r for r in result.per_time if r.failure is not None]
    assert failed and all(r.rmse is None for r in failed)
    f = failed[0].failure
    assert f.kind == "non-finite" and len(f.rows) > 0
    assert all(np.linalg.norm(e) > 2.5 for e in f.examples)
    assert "NaN" in result.to_markdown()

    result = compare(lambda t, x: x[:, :1], PATH, TIMES, n=N, sample_quality=False)
    assert {r.failure.kind for r in result.per_time} == {"shape"}
    assert "expected (400, 2)" in result.per_time[0].failure.message


def test_a_model_that_raises_is_reported_with_its_traceback():
    def broken(t, x):
        if t > 0.6:
            raise RuntimeError("checkpoint not loaded")
        return exact(t, x)

    result = compare(broken, PATH, TIMES, n=N, sample_quality=False)
    failure = result.at(0.75).failure
    assert failure.kind == "exception" and "RuntimeError: checkpoint not loaded" in failure.message
    assert "broken" in failure.traceback
    assert result.at(0.25).failure is None
    payload = json.loads(result.to_json())
    assert payload["ok"] is False and payload["failures"]


def test_boundary_and_self_consistency_each_detected_alone():
    """A model that breaks only f(0, x) = x, and one that is self-consistent in no way
    but exact at t = 0."""

    def bad_boundary(t, x):
        return exact(t, x) + (0.1 if t == 0 else 0.0)

    r1 = compare(bad_boundary, PATH, TIMES, n=N, sample_quality=False)
    assert r1.boundary_max == pytest.approx(0.1 * np.sqrt(2))
    assert all(r.self_consistency <= 1e-8 for r in r1.per_time[2:])  # s > 0: unaffected

    def time_inconsistent(t, x):
        return exact(t, x) + 0.2 * np.sin(7 * t)

    r2 = compare(time_inconsistent, PATH, TIMES, n=N, sample_quality=False)
    assert r2.boundary_max == 0.0
    for r in r2.per_time[1:]:  # f*(t, x) = f*(s, X_{t→s}(x)): only the offsets differ
        gap = np.sqrt(2) * 0.2 * abs(np.sin(7 * r.t) - np.sin(7 * r.self_consistency_s))
        assert r.self_consistency == pytest.approx(gap, abs=1e-7)


def test_energy_distance_is_the_v_statistic_in_any_blocking():
    """2/(nm) Σ|x_i − y_j| − 1/n² Σ|x_i − x_j| − 1/m² Σ|y_i − y_j|, from all pairwise
    distances at once (scipy), whatever the block size; 0 for identical samples."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(170, 2)) + np.array([1.0, 0.0])
    expected = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    assert expected > 0.1
    for block in (1, 7, 300, 1024):
        assert energy_distance(x, y, block=block) == pytest.approx(expected, rel=1e-12)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def test_torch_modules_float32_and_float64():
    torch = pytest.importorskip("torch")

    class Affine(torch.nn.Module):
        """The exact consistency function of a Gaussian: f*(t, x) = μ + C_t^{-1/2}-scaled x."""

        def __init__(self, mean, cov, dtype):
            super().__init__()
            self.mean = torch.nn.Parameter(torch.tensor(mean, dtype=dtype))
            self.register_buffer("cov", torch.tensor(cov, dtype=dtype))

        def forward(self, t, x):
            assert t.shape == (x.shape[0],)
            tt = t[:, None, None]
            c = (1 - tt) ** 2 * self.cov + tt**2 * torch.eye(x.shape[1], dtype=x.dtype)
            vals, vecs = torch.linalg.eigh(c)
            lam, u = torch.linalg.eigh(self.cov)
            root = u @ torch.diag(lam.sqrt()) @ u.T
            inv_sqrt = vecs @ torch.diag_embed(vals.rsqrt()) @ vecs.transpose(1, 2)
            y = (x - (1 - t)[:, None] * self.mean)[..., None]
            return self.mean + (root @ inv_sqrt @ y)[..., 0]

    mix = cmv.mixtures.gaussian()
    path = cmv.MixturePath(mix, cmv.Interpolant.linear())
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        model = Affine(mix.means[0], mix.covs[0], dtype)
        result = compare(model, path, (0.2, 0.6), n=200, sample_quality=False)
        assert result.ok and max(r.max_error for r in result.per_time) <= tol, dtype


def test_adapter_errors():
    with pytest.raises(TypeError, match="callable"):
        ModelAdapter(3)
    with pytest.raises(ValueError, match="signature"):
        ModelAdapter(exact, signature="t, y")
    with pytest.raises(ModelError, match="not numeric"):
        ModelAdapter(lambda t, x: "nope")(0.5, np.zeros((2, 2)))


def test_compare_cli(tmp_path, capsys):
    model_file = tmp_path / "mymodel.py"
    model_file.write_text(
        "import cmverify as cmv\n"
        "FLOW = cmv.ReferenceFlow(cmv.MixturePath(cmv.mixtures.mild_bimodal()))\n"
        "def model(t, x):\n    return FLOW.consistency(t, x)\n"
    )
    out = tmp_path / "report"
    code = main(
        [
            "compare",
            f"{model_file}:model",
            "--mixture",
            "mild_bimodal",
            "-n",
            "300",
            "--json",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["path"].startswith("mild_bimodal")
    assert (out / "comparison.md").exists() and (out / "error_vs_t.png").exists()
    assert main(["compare", "nofile.py:model"]) == 2


def test_compare_cli_loads_torch_checkpoints_safely(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    model_file = tmp_path / "net.py"
    model_file.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.shift = torch.nn.Parameter(torch.zeros(1))\n"
        "    def forward(self, t, x):\n        return x + self.shift\n"
    )
    ckpt = tmp_path / "net.pt"
    torch.save({"shift": torch.tensor([0.25])}, ckpt)
    code = main(
        [
            "compare",
            f"{model_file}:Net",
            "--mixture",
            "seed_bimodal",
            "-n",
            "200",
            "--checkpoint",
            str(ckpt),
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    # The checkpoint's shift, not the initial 0: f(0, x) = x + 0.25 (d = 1), so the gap
    # |f(0, x) − x| is 0.25 at every data point, up to the float32 rounding of x + 0.25
    # (|x| ≤ 3 here: at most 2⁻²² absolute).
    assert code == 0
    assert payload["boundary_max"] == pytest.approx(0.25, abs=2**-21)
    assert payload["boundary_rms"] == pytest.approx(0.25, abs=2**-21)
    evil = tmp_path / "evil.pt"
    torch.save({"shift": torch.tensor([0.25]), "obj": object()}, evil)
    capsys.readouterr()
    assert main(["compare", f"{model_file}:Net", "--checkpoint", str(evil)]) == 2
    err = capsys.readouterr().err  # torch refused to unpickle the object; its advice is not relayed
    assert "weights_only=True" in err and "weights_only=False" not in err


# -- the report: a folder, JSON both ways, names; the reference cache -----------------------


@pytest.fixture(scope="module")
def eventful():
    """A model biased by 0.05 at t = 0.5 (exceeding atol = 0.01 there only) and NaN on
    the rows with x[0] > 0 at t = 0.75 (more rows than a failure's JSON keeps)."""
    shift = 0.05 * np.array([0.6, 0.8])

    def model(t, x):
        out = exact(t, x) + (shift if t == 0.5 else 0.0)
        if t == 0.75:
            out[x[:, 0] > 0] = np.nan
        return out

    return compare(model, PATH, TIMES, n=N, n_samples=60, atol=0.01, name="eventful")


def test_save_writes_a_report_that_reads_back_exactly(tmp_path, eventful):
    result = eventful
    nan_rows = result.at(0.75).failure.n_rows
    assert nan_rows == len(result.at(0.75).failure.rows) > 20
    written = result.save(tmp_path / "new" / "report", figures=False)
    assert [p.name for p in written] == ["comparison.json", "comparison.md"]
    assert written[1].read_text() == result.to_markdown() + "\n"
    loaded = Comparison.from_json(written[0].read_text())
    assert loaded.to_json() == result.to_json()  # every number, bit for bit
    assert loaded.at(0.5).rmse == result.at(0.5).rmse == pytest.approx(0.05, abs=1e-7)
    assert loaded.boundary_max == result.boundary_max <= 1e-12
    assert [e.t for e in loaded.exceeded] == [0.5] and not loaded.passed
    failure = loaded.at(0.75).failure
    assert failure.kind == "non-finite" and failure.n_rows == nan_rows
    assert failure.rows == result.at(0.75).failure.rows[:20]
    assert f"({nan_rows} rows, first" in failure.describe()
    assert loaded.samples[0].energy_distance == result.samples[0].energy_distance
    assert loaded.figure_data is None and loaded.verdict() == result.verdict()


def test_save_draws_the_figures_it_can(tmp_path, monkeypatch, eventful):
    pytest.importorskip("matplotlib")
    result = eventful
    pngs = ["error_vs_t.png", "samples.png", "arrows.png"]
    written = result.save(tmp_path / "full")
    assert [p.name for p in written] == ["comparison.json", "comparison.md", *pngs]
    assert all(p.stat().st_size > 0 for p in written)
    # read back from JSON there are no arrays: the error figure only
    loaded = Comparison.from_json((tmp_path / "full" / "comparison.json").read_text())
    assert [p.name for p in loaded.save(tmp_path / "loaded")][2:] == ["error_vs_t.png"]
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(ImportError, match="matplotlib"):
        result.save(tmp_path / "never", figures=True)
    assert not (tmp_path / "never").exists()
    assert [p.name for p in result.save(tmp_path / "text")] == ["comparison.json", "comparison.md"]


def test_save_refuses_an_unwritable_folder_before_writing(tmp_path, eventful):
    result = eventful
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"^folder '.*file' exists and is not a folder$"):
        result.save(blocker, figures=False)
    with pytest.raises(ValueError, match=r"^folder '.*sub' is not writable"):
        result.save(blocker / "sub", figures=False)
    assert list(tmp_path.iterdir()) == [blocker] and blocker.read_text() == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "a JSON list"),
        ("{not json", "invalid JSON"),
        ('{"model": "m"}', "missing 'path'"),
        ('{"model": "m", "path": "p", "dim": "two"}', "dim must be an integer, got 'two'"),
        ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),  # was RecursionError
        ('{"n": ' + "9" * 5000 + "}", "invalid JSON"),  # beyond int's digit limit
        (b'{"model": "\xff"}', "invalid JSON"),
    ],
)
def test_from_json_refuses_what_is_not_a_report(text, message):
    with pytest.raises(ValueError, match=f"^not a comparison report: .*{message}"):
        Comparison.from_json(text)


def test_from_json_of_none_is_a_value_error_as_documented():
    """Regression (review finding 11): ``from_json(None)`` raised json's TypeError."""
    with pytest.raises(ValueError, match=r"^not a comparison report: text must be a JSON string"):
        Comparison.from_json(None)


def _edit(key_path, value):
    """An edit of a report's dict: set the entry at ``key_path`` (keys and indices)."""

    def edit(data):
        *parents, last = key_path
        for key in parents:
            data = data[key]
        data[last] = value

    return edit


def _nested(depth):
    """A list nested ``depth`` deep, built without recursion."""
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # the review's examples: accepted, then to_markdown failed ("Unknown format code")
        (_edit(["boundary_rms"], "abc"), "boundary_rms must be a finite number ≥ 0, got 'abc'"),
        (
            _edit(["per_time", 2, "rmse"], "big"),
            r"per_time\[2\]\.rmse must be a finite number ≥ 0, got 'big'",
        ),
        (_edit(["dim"], 2.7), "dim must be an integer, got 2.7"),  # was 2, silently
        (_edit(["dim"], 2.0), "dim must be an integer, got 2.0"),
        (_edit(["n"], True), "n must be an integer, got True"),
        (_edit(["seed"], -1), "seed must be an integer ≥ 0, got -1"),
        (_edit(["model"], 3), "model must be a string, got 3"),
        (_edit(["path"], "\ud800"), "path must be valid UTF-8 text"),  # save() could not write it
        (_edit(["wall_seconds"], 10**400), "wall_seconds must be a finite number ≥ 0, got 1000"),
        (_edit(["data_scale"], float("inf")), "data_scale must be a finite number ≥ 0, got inf"),
        (_edit(["per_time", 1, "max_error"], -1.0), r"per_time\[1\]\.max_error must be .* ≥ 0"),
        (_edit(["per_time", 0, "t"], 1.5), r"per_time\[0\]\.t must be a finite number in \[0, 1\]"),
        (
            _edit(["per_time", 1, "worst_point"], [1.0]),
            r"per_time\[1\]\.worst_point must hold 2 numbers, got 1",
        ),
        (
            _edit(["per_time", 1, "self_consistency_s"], None),
            r"per_time\[1\]\.self_consistency_s is missing for its self_consistency",
        ),
        (
            _edit(["per_time", 3, "failure", "kind"], "oops"),
            r"per_time\[3\]\.failure\.kind must be one of exception, shape, .*, got 'oops'",
        ),
        (
            _edit(["per_time", 3, "failure", "rows"], [1, 2.5]),
            r"per_time\[3\]\.failure\.rows\[1\] must be an integer, got 2.5",
        ),
        (
            _edit(["per_time", 3, "failure", "n_rows"], 1),
            r"per_time\[3\]\.failure\.rows lists 20 rows, more than n_rows = 1",
        ),
        (
            _edit(["per_time", 3, "failure", "examples"], [[0.1, "x"]]),
            r"per_time\[3\]\.failure\.examples\[0\]\[1\] must be a finite number, got 'x'",
        ),
        (
            _edit(["samples", 0, "mode_weights"], [0.5]),
            r"samples\[0\]\.mode_weights must hold one weight per mode frequency \(8\), got 1",
        ),
        (_edit(["samples", 0, "steps"], 0), r"samples\[0\]\.steps must be an integer ≥ 1, got 0"),
        (_edit(["threshold", "metric"], "mean"), "threshold.metric must be one of rmse, max"),
        (_edit(["exceeded", 0], {"t": 0.5}), r"missing 'exceeded\[0\]\.value'"),
        (_edit(["per_time"], []), "per_time must list at least one time, got \\[\\]"),
        (_edit(["per_time", 0, "colour"], 1), r"per_time\[0\] has an unknown field 'colour'"),
        (_edit(["failures"], {"a": 1}), r"failures must be a list, got \{'a': 1\}"),
        (_edit(["model"], _nested(100_000)), r"model must be a string, got \[\[\[\.\.\.\]\]\]"),
    ],
)
def test_from_dict_checks_every_field_and_names_it(eventful, edit, message):
    """Regression (review finding 11): malformed values were accepted (and failed later,
    in ``to_markdown``, without naming the field), ``dim = 2.7`` became 2; now each is
    refused at once, in one line naming the field, without recursing on the input."""
    data = json.loads(eventful.to_json())
    Comparison.from_dict(data)  # the unedited report reads back
    edit(data)
    with pytest.raises(ValueError, match=f"^not a comparison report: {message}") as caught:
        Comparison.from_dict(data)
    assert "\n" not in str(caught.value)


def test_model_failure_from_dict_names_the_field():
    failure = ModelFailure(0.5, "shape", "wrong shape", (0, 1), ((1.0, 2.0),), "", 2)
    assert ModelFailure.from_dict(failure.to_dict()) == failure
    with pytest.raises(ValueError, match=r"^not a model failure: missing 'kind'$"):
        ModelFailure.from_dict({"t": 0.5})
    with pytest.raises(ValueError, match=r"^not a model failure: the failure must be a JSON"):
        ModelFailure.from_dict([0.5])
    with pytest.raises(
        ValueError, match=r"^not a model failure: t must be .* in \[0, 1\], got nan"
    ):
        ModelFailure.from_dict({**failure.to_dict(), "t": float("nan")})


def test_save_writes_nothing_when_a_target_cannot_be_written(tmp_path, eventful):
    """Regression (review finding 11): with ``comparison.md`` a folder, save() raised a
    raw IsADirectoryError after writing comparison.json; now every target is checked
    before any file is moved into place, and an old report stays whole."""
    folder = tmp_path / "report"
    eventful.save(folder, figures=False)
    old_json = (folder / "comparison.json").read_text()
    (folder / "comparison.md").unlink()
    (folder / "comparison.md").mkdir()
    (folder / "comparison.json").write_text("old")
    with pytest.raises(ValueError, match=r"^cannot write '.*comparison\.md': it exists and is not"):
        eventful.save(folder, figures=False)
    assert sorted(p.name for p in folder.iterdir()) == ["comparison.json", "comparison.md"]
    assert (folder / "comparison.json").read_text() == "old"  # not half-replaced
    (folder / "comparison.md").rmdir()
    assert [p.name for p in eventful.save(folder, figures=False)] == [
        "comparison.json",
        "comparison.md",
    ]
    assert (folder / "comparison.json").read_text() == old_json
    assert sorted(p.name for p in folder.iterdir()) == ["comparison.json", "comparison.md"]
    if importlib.util.find_spec("matplotlib") is not None:  # a figure's target too
        (folder / "error_vs_t.png").mkdir()
        with pytest.raises(ValueError, match=r"error_vs_t\.png': it exists and is not a file$"):
            eventful.save(folder, figures=True)
        assert sorted(p.name for p in folder.iterdir()) == [
            "comparison.json",
            "comparison.md",
            "error_vs_t.png",
        ]


def test_the_report_names_the_mixture_it_was_given_or_says_custom():
    """Regression: the name was found by rebuilding every catalogue mixture and comparing
    values, so an unnamed mixture with eight_gaussians' parameters was reported as
    eight_gaussians; now the name is the mixture's own (GaussianMixture.name)."""
    grid = (0.0, 1.0)
    named = cmv.MixturePath(cmv.mixtures.by_name("Eight-Gaussians"), cmv.Interpolant.trig())
    result = compare(lambda t, x: x, named, grid, n=5, sample_quality=False)
    assert result.path == "eight_gaussians / trig"
    m = named.mixture
    unnamed = cmv.MixturePath(cmv.GaussianMixture(m.weights, m.means, m.covs))
    result = compare(lambda t, x: x, unnamed, grid, n=5, sample_quality=False)
    assert result.path == "custom mixture (K = 8, d = 2) / linear"
    assert "custom mixture (K = 8, d = 2) / linear" in result.to_markdown()
    signed = compare(lambda t, x: x, unnamed, [-0.0], n=5, sample_quality=False)
    assert [math.copysign(1.0, r.t) for r in signed.per_time] == [1.0, 1.0]  # t = 0, not −0
    assert "| -0 |" not in signed.to_markdown()


def test_reference_sets_are_shared_by_equal_paths_and_only_by_them():
    """Keyed by the path's value, not id(path): a separately built equal path gets the
    same set (regression: it was rebuilt); a different interpolant, covariance or seed
    gets its own; the least recently used set is dropped first."""
    grid = (0.0,)  # f*(0, x) = x: nothing to solve
    twin = cmv.MixturePath(cmv.mixtures.eight_gaussians(), cmv.Interpolant.linear())
    assert twin is not PATH and twin.mixture is not PATH.mixture
    first = _reference.reference_set(PATH, grid, 5, 0, 3)
    assert _reference.reference_set(twin, grid, 5, 0, 3) is first
    trig = cmv.MixturePath(PATH.mixture, cmv.Interpolant.trig())
    assert _reference.reference_set(trig, grid, 5, 0, 3) is not first
    m = PATH.mixture
    covs = m.covs.copy()
    covs[3, 0, 0] = np.nextafter(covs[3, 0, 0], 1.0)
    nudged = cmv.MixturePath(cmv.GaussianMixture(m.weights, m.means, covs, name=m.name))
    assert _reference.path_key(nudged) != _reference.path_key(PATH)
    assert _reference.path_key(twin) == _reference.path_key(PATH)
    s = sp.Symbol("s")  # the same interpolant written with another time symbol
    renamed = cmv.MixturePath(m, cmv.Interpolant.from_sympy(1 - s, s, s))
    assert _reference.reference_set(renamed, grid, 5, 0, 3) is first
    assert _reference.reference_set(PATH, grid, 5, 1, 3) is not first
    sets = [_reference.reference_set(PATH, grid, 5, seed, 3) for seed in range(100, 109)]
    assert _reference.CACHE_SIZE == 8  # nine new sets: the first is gone, the rest stay
    assert _reference.reference_set(PATH, grid, 5, 101, 3) is sets[1]
    rebuilt = _reference.reference_set(PATH, grid, 5, 100, 3)
    assert rebuilt is not sets[0]
    np.testing.assert_array_equal(rebuilt.points[0], sets[0].points[0])  # same seed
    assert _reference.reference_set(PATH, grid, 5, 101, 3) is sets[1]  # still there
