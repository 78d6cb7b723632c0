"""Sharded exact reference data: determinism across shardings, resumption, the manifest,
the CLI, and a dask LocalCluster run."""

import json
import os
import pathlib
import time

import numpy as np
import pytest

import cmverify as cmv
from cmverify.cli import main
from cmverify.reference import _pairs


def _shards(out, n, m, **kw):
    return [cmv.reference_pairs("eight_gaussians", n, (i, m), out=out, **kw) for i in range(m)]


def _rows(out):
    files = sorted(pathlib.Path(out).glob("shard-*.npz"))
    parts = [dict(np.load(f)) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "run"}


def test_rows_do_not_depend_on_the_sharding_and_match_the_reference_flow(tmp_path, monkeypatch):
    monkeypatch.setattr(_pairs, "BLOCK", 64)  # several noise blocks per shard
    monkeypatch.setattr(_pairs, "CHUNK", 50)  # several chunks per shard
    one = _shards(tmp_path / "one", 300, 1)
    three = _shards(tmp_path / "three", 300, 3)
    assert [(s.start, s.stop) for s in three] == [(0, 100), (100, 200), (200, 300)]
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "three")
    np.testing.assert_array_equal(a["rows"], np.arange(300))
    for key in ("rows", "x1", "x0"):
        np.testing.assert_array_equal(a[key], b[key])
    assert np.all(a["error_estimate"] <= a["target"]) and a["unresolved"].size == 0
    assert one[0].max_error_ratio <= 1.0 and one[0].n_unresolved == 0
    path = cmv.MixturePath(cmv.mixtures.eight_gaussians())
    exact = cmv.ReferenceFlow(path).map(a["x1"][:40], 1.0, 0.0)
    np.testing.assert_allclose(a["x0"][:40], exact, atol=1e-8)
    # the noise is standard normal and differs between seeds
    other = _shards(tmp_path / "seed1", 300, 1, seed=1)
    assert not np.array_equal(_rows(tmp_path / "seed1")["x1"], a["x1"]) and other
    manifest = json.loads((tmp_path / "three" / "manifest.json").read_text())
    assert manifest["n"] == 300 and manifest["shards"] == 3 and manifest["dim"] == 2
    assert manifest["version"] == cmv.__version__ and manifest["chunk"] == 50


def test_an_interrupted_shard_resumes_from_its_last_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(_pairs, "CHUNK", 40)
    calls = []
    real = cmv.ReferenceFlow.solve

    def solve(self, x, s, t, **kw):
        calls.append(len(x))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, x, s, t, **kw)

    monkeypatch.setattr(cmv.ReferenceFlow, "solve", solve)
    with pytest.raises(KeyboardInterrupt):
        cmv.reference_pairs("eight_gaussians", 200, (0, 1), out=tmp_path)
    partial = tmp_path / "shard-00000-of-00001.partial"
    assert sorted(p.name for p in partial.iterdir()) == ["chunk-00000.npz", "chunk-00001.npz"]
    assert not (tmp_path / "shard-00000-of-00001.npz").exists()
    # a write cut short by the interruption leaves its temporary file behind
    stale = partial / ".chunk-00002.npz.12345.abcd1234.tmp"
    stale.write_bytes(b"PK")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    cmv.reference_pairs("eight_gaussians", 200, (0, 1), out=tmp_path)
    assert calls == [40, 40, 40, 40, 40, 40]  # the two saved chunks are not solved again
    assert not partial.exists()
    resumed = _rows(tmp_path)
    monkeypatch.setattr(cmv.ReferenceFlow, "solve", real)
    fresh = _shards(tmp_path / "fresh", 200, 1)
    assert fresh and np.array_equal(_rows(tmp_path / "fresh")["x0"], resumed["x0"])
    # a complete shard is read back, not recomputed
    calls.clear()
    monkeypatch.setattr(cmv.ReferenceFlow, "solve", solve)
    again = cmv.reference_pairs("eight_gaussians", 200, (0, 1), out=tmp_path)
    assert calls == [] and again.stop == 200


def test_a_folder_of_another_run_and_bad_shards_are_refused(tmp_path):
    cmv.reference_pairs("eight_gaussians", 20, (0, 2), out=tmp_path)
    with pytest.raises(ValueError, match=r"another run: its manifest differs in n \(20, not 30\)"):
        cmv.reference_pairs("eight_gaussians", 30, (1, 2), out=tmp_path)
    with pytest.raises(ValueError, match="mixture"):
        cmv.reference_pairs("mild_bimodal", 20, (1, 2), out=tmp_path)
    for shard, message in [((2, 2), "0 ≤ I < M"), ((0, 0), "0 ≤ I < M"), (3, "pair")]:
        with pytest.raises(ValueError, match=message):
            cmv.reference_pairs("eight_gaussians", 20, shard, out=tmp_path / "x")
    with pytest.raises(ValueError, match="unknown mixture"):
        cmv.reference_pairs("nine_gaussians", 20, out=tmp_path / "y")
    with pytest.raises(TypeError, match="mixture must be a name"):
        cmv.reference_pairs(cmv.mixtures.eight_gaussians(), 20, out=tmp_path / "w")
    with pytest.raises(TypeError, match="n must be an integer"):
        cmv.reference_pairs("eight_gaussians", 2.5, out=tmp_path / "z")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="out"):
        cmv.reference_pairs("eight_gaussians", 20, out=blocker)


def test_more_shards_than_rows_gives_empty_shards(tmp_path):
    shards = _shards(tmp_path, 2, 4)
    assert [s.stop - s.start for s in shards] == [0, 1, 0, 1]
    data = _rows(tmp_path)
    assert data["x0"].shape == (2, 2) and data["rows"].tolist() == [0, 1]


def test_the_cli_writes_a_shard_and_refuses_a_bad_shard(tmp_path, capsys):
    argv = ["reference", "--mixture", "mild-bimodal", "--n", "30", "--shard", "1/3"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["first_row"] == 10 and report["n_rows"] == 10 and report["unresolved"] == 0
    assert (tmp_path / "shard-00001-of-00003.npz").exists()
    assert main([*argv[:-1], "1:3", "--out", str(tmp_path)]) == 2
    assert "--shard must be I/M" in capsys.readouterr().err
    assert main([*argv[:-1], "3/3", "--out", str(tmp_path)]) == 2
    assert "0 ≤ I < M" in capsys.readouterr().err
    # a negative index reaches the shard check (argparse had taken it for an option)
    assert main([*argv[:-1], "-1/3", "--out", str(tmp_path)]) == 2
    assert "--shard must be I/M, e.g. 0/8, got '-1/3'" in capsys.readouterr().err


def test_the_dask_example_on_a_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    import runpy

    example = runpy.run_path(str(pathlib.Path(__file__).parents[1] / "examples/reference_dask.py"))
    shards = example["run"](120, 3, 2, str(tmp_path))
    assert sorted((s.start, s.stop) for s in shards) == [(0, 40), (40, 80), (80, 120)]
    data = example["load"](str(tmp_path))
    single = _shards(tmp_path / "single", 120, 1)
    alone = _rows(tmp_path / "single")
    np.testing.assert_array_equal(data["x1"], alone["x1"])  # the noise: bit for bit
    # the maps: to rounding (the batched solver's last bit depends on the batch length)
    assert single and np.max(np.abs(data["x0"] - alone["x0"])) < 1e-13
    # a file of another run (M = 1) beside the manifest's is refused, not mixed in
    (tmp_path / "shard-00000-of-00001.npz").write_bytes(single[0].path.read_bytes())
    with pytest.raises(ValueError, match="another run"):
        example["load"](str(tmp_path))


def test_files_of_another_run_are_refused_and_broken_ones_recomputed_or_named(tmp_path):
    from cmverify.reference import _pairs as pairs

    a = tmp_path / "a"
    cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=a)
    (a / "manifest.json").unlink()  # "reset" the folder: the shard of seed 0 stays
    with pytest.raises(ValueError, match="holds data of another run"):
        cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=a, seed=1)
    assert not (a / "manifest.json").exists()  # the refused call wrote nothing
    # another M leaves other file names: the whole folder is checked, and the message
    # names what differs (review: seed 7's shard 1/2 stayed beside seed 8's 0/4, 1/4)
    with pytest.raises(ValueError, match=r"another run \(seed 0, not 1, shards 1, not 2"):
        cmv.reference_pairs("eight_gaussians", 30, (0, 2), out=a, seed=1)
    assert cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=a).stop == 30
    # a truncated chunk is computed again, with a progress line saying so
    b = tmp_path / "b"
    cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=b)
    final = b / "shard-00000-of-00001.npz"
    good = dict(np.load(final))
    partial = b / "shard-00000-of-00001.partial"
    partial.mkdir()
    (partial / "chunk-00000.npz").write_bytes(final.read_bytes()[:100])
    final.unlink()
    lines = []
    cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=b, progress=lines.append)
    assert "cannot be read" in lines[0]
    np.testing.assert_array_equal(dict(np.load(final))["x0"], good["x0"])
    # a truncated shard file is named, not read as data
    final.write_bytes(final.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=b)
    # a manifest that is not one
    (b / "manifest.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a cmverify manifest"):
        cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=b)
    # a bad rtol is refused before the folder is touched
    with pytest.raises(ValueError, match="rtol"):
        cmv.reference_pairs("eight_gaussians", 30, out=tmp_path / "c", rtol=float("nan"))
    assert not (tmp_path / "c").exists()
    assert pairs.FORMAT.endswith("/1")


def test_shards_in_threads_of_one_process(tmp_path):
    """Dask workers run several tasks as threads of one process: the temporary names
    differ per thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        done = list(
            pool.map(
                lambda i: cmv.reference_pairs("mild_bimodal", 16, (i, 8), out=tmp_path), range(8)
            )
        )
    assert sorted(s.start for s in done) == list(range(0, 16, 2))
    assert len(list(tmp_path.glob("shard-*.npz"))) == 8


def test_leftovers_of_a_quick_rerun_are_removed_by_a_later_call(tmp_path):
    """Ctrl-C and an immediate rerun: the interrupted write's temporary file is younger
    than ``STALE_SECONDS``, so the completed shard keeps its ``.partial`` folder (it might
    be another process's write); a later call that finds the shard complete removes it,
    and a stale temporary file of the shard's own ``.npz`` beside it (found in review)."""
    partial = tmp_path / "shard-00000-of-00001.partial"
    partial.mkdir()
    fresh = partial / ".chunk-00000.npz.999.abcd1234.tmp"
    fresh.write_bytes(b"PK")
    beside = tmp_path / ".shard-00000-of-00001.npz.999.abcd1234.tmp"
    beside.write_bytes(b"PK")
    cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=tmp_path)
    assert fresh.exists() and beside.exists()  # young: kept
    old = time.time() - 2 * _pairs.STALE_SECONDS
    for tmp in (fresh, beside):
        os.utime(tmp, (old, old))
    again = cmv.reference_pairs("eight_gaussians", 30, (0, 1), out=tmp_path)
    assert again.stop == 30 and not partial.exists() and not beside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "manifest.json",
        "shard-00000-of-00001.npz",
    ]
