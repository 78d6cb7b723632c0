"""The command line: ``cmverify verify``, ``train``, and loading a user's model file."""

import dataclasses
import functools
import json
import re
import subprocess
import sys
import unicodedata

import pytest

from cmverify import mixtures
from cmverify.claims import CATALOGUE, Check, ClaimResult
from cmverify.claims import _runner as battery
from cmverify.claims._local import measure_euler_local
from cmverify.cli import _verify as cli_verify
from cmverify.cli import main
from cmverify.cli._load import _load_model
from cmverify.cli._tables import _claims_markdown, _claims_table
from cmverify.exact import acceleration

torch = pytest.importorskip("torch")


def test_verify_quick_runs_the_whole_battery_and_passes(capsys):
    """The quick battery: every claim of the catalogue is measured and passes, with a
    progress line per case and per claim."""
    assert main(["verify", "--quick"]) == 0
    out = capsys.readouterr()
    assert f"{len(CATALOGUE)} of {len(CATALOGUE)} claims pass" in out.out
    assert len(CATALOGUE) == 22
    assert "log p_t" in out.out  # the seed path's quantities
    assert "MULTISTEP: PASS" in out.err  # progress lines go to stderr
    assert re.search(r"FLOW-MAP eight_gaussians/linear \(\d+\.\d\d s\)", out.err)
    for claim in CATALOGUE:
        assert claim in out.out
    assert max(map(_display_width, out.out.splitlines())) <= 100  # was 149


def test_verify_json_contract(capsys):
    assert (
        main(["verify", "--quick", "--json", "--claim", "FLOW-GAUSS", "--claim", "CT-GAUSS"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["FLOW-GAUSS", "CT-GAUSS"]
    for r in rows:
        assert {"id", "title", "measured", "expected", "passed", "checks"} <= set(r)
        assert r["passed"] is True and r["measured"] <= 1
        assert r["title"] == CATALOGUE[r["id"]].title
        assert r["statement"] == CATALOGUE[r["id"]].statement
        assert {c["case"] for c in r["checks"]} == {"gaussian/linear", "gaussian/trig"}


def test_a_wrong_prediction_fails_its_row_and_the_exit_status(monkeypatch, capsys):
    """Inject a wrong leading term into EULER-LOCAL (¼ a instead of ½ a)."""
    wrong = functools.partial(
        measure_euler_local, prediction=lambda path, s, y: 0.25 * acceleration(path, s, y)
    )
    claim = dataclasses.replace(CATALOGUE["EULER-LOCAL"], measure=wrong)
    monkeypatch.setattr(battery, "CATALOGUE", {**CATALOGUE, "EULER-LOCAL": claim})
    assert main(["verify", "--quick", "--claim", "EULER-LOCAL"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: EULER-LOCAL" in out
    assert "EULER-LOCAL    " in out and "FAIL" in out


def test_unknown_claim_is_an_error(capsys):
    assert main(["verify", "--claim", "NOPE"]) == 2
    assert "unknown claim" in capsys.readouterr().err


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "cmverify", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("cmverify ")


# --- the verify table's layout -------------------------------------------------------


def _display_width(line):
    return sum(not unicodedata.combining(ch) for ch in line)


def _long_result():
    long = "a claim whose statement is long: E[F(y − δΔ) | y] − F(y − vΔ) = ½Δ² tr(∇²F Cov(δ | y))"
    checks = (
        Check.against(
            "a check with a long name, |Δ|/(1+|v|) measured at every point of a fine grid",
            "eight_gaussians/linear, F = tanh-net(width=16, seed=0)",
            1.999,
            2.0,
            0.05,
            "order fit",
        ),
        Check("non-finite *values* at t ∈ grid", "seed_bimodal/trig", 3.0, 1.0, "budget"),
    )
    return [ClaimResult("SWAP-LOCAL", long * 2, checks)]


def test_claims_table_fits_100_columns_and_keeps_every_word():
    """Wrapped, not truncated: every line ≤ 100 columns, and the words of the statement,
    the check names and the cases all appear (the old table was 149 columns wide and cut
    the statement at 62 characters)."""
    results = _long_result()
    table = _claims_table(results)
    lines = table.splitlines()
    assert max(map(_display_width, lines)) <= 100
    words = " ".join(lines).split()
    text = [results[0].title] + [c.name for c in results[0].checks]
    text += [c.case for c in results[0].checks]
    for word in " ".join(text).split():
        assert word in words
    assert lines[2].startswith("SWAP-LOCAL") and lines[2].endswith("FAIL")
    row = next(line for line in lines if "order fit" in line or "1.999" in line)
    assert "2 ± 0.05" in row and row.rstrip().endswith("pass")


def test_a_score_with_value_and_expected_is_shown_as_measured_against_its_bound():
    """A z-score check keeps the mean and the floor in ``value``/``expected`` (JSON), but its
    tolerance is in standard errors: the row had read "0.2342 | 0.2443 ± 4.4" (review)."""
    z = Check(
        "loss = floor: |mean − floor| / s.e.", "c", 1.13, 4.4, "b", value=0.2342, expected=0.2443
    )
    row = next(
        line for line in _claims_table([ClaimResult("X", "x", [z])]).splitlines() if "s.e." in line
    )
    assert "±" not in row and "1.13" in row and "4.4" in row


def test_claims_markdown_is_a_valid_table_with_the_full_text():
    results = _long_result()
    lines = _claims_markdown(results).splitlines()
    cells = [re.split(r"(?<!\\)\|", line)[1:-1] for line in lines]
    assert {len(c) for c in cells} == {6}  # escaped pipes stay inside their cell
    assert cells[2][0].strip() == "**SWAP-LOCAL**" and cells[2][5].strip() == "**FAIL**"
    unescaped = re.sub(r"\\(.)", r"\1", cells[2][1].strip())
    assert unescaped == results[0].title
    assert "non-finite \\*values\\*" in cells[3][1]  # not emphasis; the worst check first


def test_verify_markdown_option(monkeypatch, capsys):
    monkeypatch.setattr(cli_verify, "run_battery", lambda config, progress, only: _long_result())
    assert main(["verify", "--markdown"]) == 1
    out = capsys.readouterr().out
    assert "### Claims" in out and "| **SWAP-LOCAL** |" in out
    assert "**0 of 1 claims pass; FAILED: SWAP-LOCAL" in out


# --- threads -------------------------------------------------------------------------


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_threads_option_limits_blas_during_the_command(monkeypatch, capsys):
    """--threads N holds while the subcommand runs (default 1) and is undone after."""
    from threadpoolctl import threadpool_limits

    seen = []

    def battery(config, progress, only):
        seen.append(_blas_threads())
        return _long_result()

    monkeypatch.setattr(cli_verify, "run_battery", battery)
    with threadpool_limits(3, user_api="blas"):
        main(["verify", "--json"])
        main(["verify", "--json", "--threads", "2"])
        assert _blas_threads() == {3}
    assert seen == [{1}, {2}]
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            main(["verify", "--threads", bad])
        assert "--threads" in capsys.readouterr().err


# --- train: usage errors, checkpoints, interrupts -------------------------------------


def _one_line_error(capsys, command):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"cmverify {command}: "), err
    return err


def test_train_refuses_a_bad_out_folder_or_mixture_before_training(tmp_path, capsys, monkeypatch):
    from cmverify.train import _trainer as trainer

    monkeypatch.setattr(trainer, "_train", lambda *a: pytest.fail("training started"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--out", str(blocker)]) == 2
    assert "--out" in _one_line_error(capsys, "train")
    assert main(["train", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in _one_line_error(capsys, "train")
    assert main(["train", "--mixture", "nine_gaussians", "--out", str(tmp_path / "a")]) == 2
    err = _one_line_error(capsys, "train")
    assert "unknown mixture 'nine_gaussians'" in err
    assert all(name in err for name in mixtures.names())
    assert main(["train", "--steps", "0", "--out", str(tmp_path / "b")]) == 2
    assert "steps" in _one_line_error(capsys, "train")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_compare_with_an_unknown_mixture_lists_the_known_ones(tmp_path, capsys):
    model = tmp_path / "m.py"
    model.write_text("def f(t, x):\n    return x\n")
    assert main(["compare", f"{model}:f", "--mixture", "nine"]) == 2
    err = _one_line_error(capsys, "compare")
    assert "unknown mixture 'nine'" in err and all(n in err for n in mixtures.names())


def _stub_evaluation(monkeypatch):
    """The trainer's evaluation (a compare run, seconds) replaced by a constant."""
    from cmverify.train import _trainer as trainer

    monkeypatch.setattr(
        trainer, "_evaluate", lambda model, path, config, **_: {"one_step_rel_rmse": 0.5}
    )
    return trainer


def test_train_writes_checkpoints_and_ctrl_c_exits_130_naming_what_was_saved(
    tmp_path, capsys, monkeypatch
):
    trainer = _stub_evaluation(monkeypatch)
    real_loss, threads = trainer.consistency_loss, []

    def loss(*args, **kwargs):
        threads.append(torch.get_num_threads())
        if len(threads) == 15:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "consistency_loss", loss)
    out = tmp_path / "new" / "run"
    argv = ["train", "--steps", "40", "--eval-every", "10", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"cmverify train: interrupted at step 14/40; the model of step 10 is saved in {out} "
        "(model.pt, config.json, metrics.json)"
    )
    assert set(threads) == {1}  # the default --threads
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["step"] == 10
    state = torch.load(out / "model.pt", weights_only=True)
    assert "network.net.0.weight" in state
    assert json.loads((out / "config.json").read_text())["steps"] == 40


def test_train_completes_with_the_final_checkpoint(tmp_path, capsys, monkeypatch):
    _stub_evaluation(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "--steps", "20", "--eval-every", "10", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is True and [h["step"] for h in metrics["history"]] == [10, 20]
    assert json.loads(capsys.readouterr().out)["one_step_rel_rmse"] == 0.5


def test_train_saves_the_final_report_and_says_what_it_wrote(tmp_path, capsys, monkeypatch):
    """The trainer saves its final evaluation (Comparison.save) in --out; the command
    names every file, and says the figures were skipped where matplotlib is missing."""
    import dataclasses
    import importlib.util

    from cmverify.train import _trainer as trainer

    real_evaluate, real_find_spec = trainer._evaluate, importlib.util.find_spec
    monkeypatch.setattr(  # a smaller evaluation: 20 points instead of 2000
        trainer,
        "_evaluate",
        lambda model, path, config, **_: real_evaluate(
            model, path, dataclasses.replace(config, eval_points=20)
        ),
    )
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    out = tmp_path / "run"
    assert main(["train", "--steps", "4", "--eval-every", "4", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    err = [line.split("] ", 1)[1] for line in captured.err.splitlines()]
    assert f"wrote {out / 'comparison.json'}" in err and f"wrote {out / 'comparison.md'}" in err
    assert "figures skipped: matplotlib is not installed" in err[-1]
    assert not list(out.glob("*.png"))
    report = json.loads((out / "comparison.json").read_text())
    one_step = next(r for r in report["per_time"] if r["t"] == 1.0)
    assert one_step["relative_rmse"] == json.loads(captured.out)["one_step_rel_rmse"]


# --- a user's model file -------------------------------------------------------------

BAD_MODELS = [
    ("def f(t, x):\n    return x +\n", "f", "SyntaxError"),
    ("import a_module_that_does_not_exist\n", "f", "ModuleNotFoundError"),
    ("raise RuntimeError('boom')\n", "f", "RuntimeError: boom"),
    ("import sys\nsys.exit(3)\n", "f", "SystemExit"),
    ("class Net:\n    def __init__(self, width):\n        pass\n", "Net", "no arguments"),
    ("width = 3\n", "width", "is not callable (type int)"),
    ("def g(t, x):\n    return x\n", "f", "has no attribute 'f'; it defines g"),
]


@pytest.mark.parametrize(("source", "name", "message"), BAD_MODELS)
def test_a_broken_model_file_is_a_one_line_error(tmp_path, capsys, source, name, message):
    model = tmp_path / "user_model.py"
    model.write_text(source)
    assert main(["compare", f"{model}:{name}", "-n", "10"]) == 2
    assert message in _one_line_error(capsys, "compare")


def test_a_model_file_that_is_not_python_is_a_one_line_error(tmp_path, capsys):
    model = tmp_path / "model.txt"
    model.write_text("def f(t, x):\n    return x\n")
    assert main(["compare", f"{model}:f"]) == 2
    assert "not a Python file" in _one_line_error(capsys, "compare")


def test_a_model_file_may_define_dataclasses(tmp_path):
    """The user's module is registered while it runs, as an import registers it: with
    string annotations a dataclass looks its module up in sys.modules (before: an
    AttributeError on None)."""
    model = tmp_path / "dc_model.py"
    model.write_text(
        "from __future__ import annotations\n\nimport dataclasses\nimport typing\n\n\n"
        "@dataclasses.dataclass\nclass Scale:\n    c: float = 1.0\n"
        "    registry: typing.ClassVar[dict] = {}\n\n"
        "    def __call__(self, t, x):\n        return self.c * x\n"
    )
    assert _load_model(f"{model}:Scale", None).c == 1.0


def test_a_checkpoint_that_does_not_fit_is_a_one_line_error(tmp_path, capsys):
    model = tmp_path / "net.py"
    model.write_text(
        "import torch\n\nclass Net(torch.nn.Linear):\n    def __init__(self):\n        super().__init__(2, 2)\n"
    )
    state = tmp_path / "wrong.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), state)  # a weight of the wrong shape
    assert main(["compare", f"{model}:Net", "--checkpoint", str(state)]) == 2
    err = _one_line_error(capsys, "compare")
    assert "could not load" in err and "size mismatch" in err
