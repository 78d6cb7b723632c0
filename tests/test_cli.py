"""The command line: ``cmverify verify``."""

import functools
import json
import subprocess
import sys

from cmverify import battery
from cmverify.cli import main
from cmverify.kinematics import acceleration

CATALOGUE = {
    "INT-BOUNDARY",
    "FLOW-VELOCITY",
    "FLOW-GAUSS",
    "FLOW-QUANTILE",
    "FLOW-MAP",
    "EULER-LOCAL",
    "SWAP-LOCAL",
    "CT-LOCAL",
    "CT-GLOBAL",
    "CT-GAUSS",
    "SONG-T1",
    "SONG-T2",
    "MULTISTEP",
}


def test_verify_quick_runs_the_whole_battery_and_passes(capsys):
    """The quick battery: every claim of the catalogue (but PARAM-BOUNDARY, which belongs
    to the trainer) is measured and passes."""
    assert main(["verify", "--quick"]) == 0
    out = capsys.readouterr()
    assert "13 of 13 claims pass" in out.out
    assert "log p_t" in out.out  # the seed path's quantities
    assert "MULTISTEP: PASS" in out.err  # progress lines go to stderr
    for claim in CATALOGUE:
        assert claim in out.out


def test_verify_json_contract(capsys):
    assert (
        main(["verify", "--quick", "--json", "--claim", "FLOW-GAUSS", "--claim", "CT-GAUSS"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["FLOW-GAUSS", "CT-GAUSS"]
    for r in rows:
        assert {"id", "title", "measured", "expected", "passed", "checks"} <= set(r)
        assert r["passed"] is True and r["measured"] <= 1
    assert set(battery.CLAIMS) == CATALOGUE


def test_a_wrong_prediction_fails_its_row_and_the_exit_status(monkeypatch, capsys):
    """Inject a wrong leading term into EULER-LOCAL (¼ a instead of ½ a)."""
    wrong = functools.partial(
        battery._euler_local, prediction=lambda path, s, y: 0.25 * acceleration(path, s, y)
    )
    monkeypatch.setitem(battery.CLAIMS, "EULER-LOCAL", wrong)
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
