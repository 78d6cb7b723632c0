"""Sharded exact reference data on a dask cluster: every shard of
``cmverify.reference_pairs`` is an independent task.

Run:  python examples/reference_dask.py [--n 100000] [--shards 8] [--workers 2] [--out DIR]

On a real cluster, replace ``LocalCluster`` by your scheduler's address
(``Client("tcp://scheduler:8786")``) or use ``dask-jobqueue``; with Slurm alone, a job
array does the same: ``cmverify reference --mixture eight_gaussians --n 1000000 --shard
$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT --out pairs``. Needs ``dask[distributed]``
(``pip install 'cmverify[cluster]'``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

import cmverify as cmv


def run(n: int, shards: int, workers: int, out: str, mixture: str = "eight_gaussians") -> list:
    """Compute all ``shards`` shards on a ``LocalCluster`` of ``workers`` processes (one
    thread each); return their :class:`~cmverify.reference.ReferenceShard` records."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        futures = [
            client.submit(cmv.reference_pairs, mixture, n, (i, shards), out=out, pure=False)
            for i in range(shards)
        ]
        return client.gather(futures)


def load(out: str) -> dict[str, np.ndarray]:
    """All shards of ``out`` concatenated in row order (``rows``, ``x1``, ``x0``); a
    ``ValueError`` if a shard of the manifest's run is missing or a file belongs to
    another run (each file's ``run`` entry is the manifest less its ``version``)."""
    manifest = json.loads((pathlib.Path(out) / "manifest.json").read_text())
    run = json.dumps({k: v for k, v in manifest.items() if k != "version"}, sort_keys=True)
    parts = [dict(np.load(f)) for f in pathlib.Path(out).glob("shard-*.npz")]
    if any(str(p["run"]) != run for p in parts):
        raise ValueError(f"{out} holds files of another run beside the manifest's")
    parts.sort(key=lambda p: int(p["rows"][0]) if p["rows"].size else -1)
    data = {key: np.concatenate([p[key] for p in parts]) for key in ("rows", "x1", "x0")}
    if not np.array_equal(data["rows"], np.arange(manifest["n"])):
        raise ValueError(f"{out} does not hold all {manifest['n']} rows: a shard is missing")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="reference-pairs")
    args = parser.parse_args(argv)
    shards = run(args.n, args.shards, args.workers, args.out)
    for s in shards:
        print(
            f"shard {s.shard}/{s.shards}: rows {s.start}–{s.stop - 1}, worst error "
            f"{s.max_error_ratio:.2f} of its target, {s.n_unresolved} unresolved, {s.seconds:.1f} s"
        )
    data = load(args.out)
    print(f"{len(data['rows'])} pairs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
