"""The command line: ``cmverify verify``."""

import json
import subprocess
import sys

from cmverify.cli import main


def test_verify_quick_prints_table_and_passes(capsys):
    assert main(["verify", "--quick"]) == 0
    out = capsys.readouterr()
    assert "FLOW-VELOCITY" in out.out and "INT-BOUNDARY" in out.out
    assert "claims pass" in out.out
    assert "log p_t" in out.out  # the seed path's quantities
    assert "FLOW-VELOCITY" in out.err  # progress lines go to stderr


def test_verify_json_contract(capsys):
    assert main(["verify", "--quick", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == {
        "INT-BOUNDARY",
        "FLOW-VELOCITY",
        "FLOW-GAUSS",
        "FLOW-QUANTILE",
        "FLOW-MAP",
    }
    for r in rows:
        assert {"id", "title", "measured", "expected", "passed"} <= set(r)
        assert r["passed"] is True and r["measured"] <= 1


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "cmverify", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("cmverify ")
