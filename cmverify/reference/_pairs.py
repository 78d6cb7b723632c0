"""Sharded exact reference data: ``(x1, X_{1→0}(x1), error estimate)`` for shard ``I`` of
``M`` (reference layer; ``cmverify reference`` and :func:`reference_pairs`).

Rows are numbered ``0 … n − 1`` over the whole run. Row ``j``'s noise ``x1`` comes from
block ``j // BLOCK`` of ``BLOCK`` rows, drawn by ``numpy.random.default_rng([seed, block])``,
so a row's noise does not depend on how the run is split: any ``M`` gives the same ``n``
rows ``x1``, bit for bit, and the shards are independent (a Slurm job array,
``dask.distributed``, or a loop). Their maps ``X_{1→0}(x1)`` agree across splits within
the certified target, usually to rounding (the batched solver's arithmetic depends on
the batch's length in the last bits: measured up to 6.5e-14 on eight_gaussians), and
bit for bit when the chunks coincide.
Shard ``I`` of ``M`` holds rows ``⌊I n / M⌋ … ⌊(I + 1) n / M⌋ − 1``.

Files in ``out`` (format ``FORMAT``):

- ``manifest.json``: the run's parameters (format, mixture, interpolant, ``n``, ``M``,
  seed, ``d``, rtol, ``BLOCK``, ``CHUNK``) and the version of cmverify that wrote it;
  written by the first shard that starts (atomically); a shard with other parameters
  refuses the folder. Shard ``I`` holds rows ``⌊I n / M⌋ … ⌊(I + 1) n / M⌋ − 1``;
- ``shard-IIIII-of-MMMMM.npz`` (numbers padded to at least 5 digits, and to the width of
  ``M``): ``x1`` and ``x0`` (``X_{1→0}(x1)``, the exact one-step
  map, float64 ``(rows, d)``), ``error_estimate`` and ``target`` (per row, the solver's
  ``|X_k − X_{k−1}|`` and ``atol + rtol |X|``: every row has ``error_estimate ≤ target``
  unless its global row number is in ``unresolved``), ``rows`` (the global row numbers);
  written atomically
  once the shard is complete;
- while a shard runs, ``shard-….partial/chunk-KKKKK.npz``, one per ``CHUNK`` rows: an
  interrupted shard resumes from its last complete chunk. The folder is removed once the
  shard is complete, with the temporary files that interrupted writes left in it (or
  beside the shard's file) once they are a minute old: a call that finds the shard
  complete removes what a quick rerun had to leave.

Every chunk and shard file carries ``run``, the run's parameters as JSON: a file of
another run (a manifest deleted to "reset" the folder, say) is refused, never mixed in; a
chunk that cannot be read (a truncated write) is computed again.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._io import check_writable
from .._validation import as_count
from ..exact import MixturePath, mixtures
from ..symbolic import interpolants
from ._flow import ReferenceFlow

__all__ = ["BLOCK", "CHUNK", "FORMAT", "ReferenceShard", "reference_pairs", "shard_rows"]

#: Rows per random block (the unit of the noise's seeding).
BLOCK = 4096
#: Rows per resumable chunk of a shard.
CHUNK = 4096
#: A temporary file untouched this long is an interrupted write's (one chunk's write takes
#: milliseconds), removed once its shard is complete.
STALE_SECONDS = 60.0
#: The files' format version.
FORMAT = "cmverify-reference-pairs/1"


@dataclass(frozen=True)
class ReferenceShard:
    """One finished shard: its file, its global row range, and its worst accuracy."""

    path: pathlib.Path
    shard: int
    shards: int
    start: int
    stop: int
    max_error_ratio: float  # max over rows of error_estimate / target
    n_unresolved: int
    seconds: float


def shard_rows(n: int, shard: int, shards: int) -> tuple[int, int]:
    """``(start, stop)``: shard ``shard`` of ``shards`` holds rows ``start … stop − 1``."""
    return shard * n // shards, (shard + 1) * n // shards


def _noise(seed: int, start: int, stop: int, dim: int) -> np.ndarray:
    """Rows ``start … stop − 1`` of the run's noise (module docstring), shape ``(rows, d)``."""
    parts = []
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        values = np.random.default_rng([seed, block]).standard_normal((BLOCK, dim))
        lo, hi = max(start - block * BLOCK, 0), min(stop - block * BLOCK, BLOCK)
        parts.append(values[lo:hi])
    return np.concatenate(parts) if parts else np.zeros((0, dim))


def _temporary(path: pathlib.Path) -> pathlib.Path:
    """A temporary name beside ``path``, unique per process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _save(path: pathlib.Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary name, then an atomic rename."""
    tmp = _temporary(path)
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _manifest(out: pathlib.Path, params: dict) -> None:
    """Write the manifest if absent; refuse a folder whose manifest differs."""
    target = out / "manifest.json"
    if target.exists():
        try:
            found = json.loads(target.read_text())
            if not isinstance(found, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{target} is not a cmverify manifest ({exc})") from None
        mismatched = [k for k in params if k != "version" and found.get(k) != params[k]]
        if mismatched:
            raise ValueError(
                f"{out} holds another run: its manifest differs in "
                + ", ".join(f"{k} ({found.get(k)!r}, not {params[k]!r})" for k in mismatched)
            )
        return
    tmp = _temporary(target)
    tmp.write_text(json.dumps(params, indent=1, allow_nan=False))
    os.replace(tmp, target)


def _read(path: pathlib.Path, run: str, *, arrays: bool = True) -> dict[str, np.ndarray] | None:
    """The arrays of a chunk or shard file of this ``run`` (``arrays=False``: only its
    ``run`` entry is read, the check); ``None`` if it cannot be read (truncated);
    ``ValueError`` if it belongs to another run."""
    try:
        with np.load(path) as data:
            found = str(data["run"]) if "run" in data.files else None
            if found == run and arrays:
                return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if found != run:
        raise ValueError(
            f"{path} holds data of another run ({_differences(found, run)}): use another "
            "--out, or remove that run's files (shard-*.npz, shard-*.partial) from the folder"
        )
    return {}


def _differences(found: str | None, run: str) -> str:
    """The parameters in which a file's ``run`` entry differs from this run's."""
    try:
        theirs, ours = json.loads(found), json.loads(run)
    except (TypeError, ValueError):
        return "an older format"
    keys = [k for k in ours if theirs.get(k) != ours[k]]
    return ", ".join(f"{k} {theirs.get(k)!r}, not {ours[k]!r}" for k in keys) or "format"


def reference_pairs(
    mixture: str,
    n: int,
    shard: tuple[int, int] = (0, 1),
    *,
    interpolant: str = "linear",
    seed: int = 0,
    out: str | os.PathLike[str] = "reference-pairs",
    rtol: float = 1e-10,
    progress: Callable[[str], None] | None = None,
) -> ReferenceShard:
    """Compute (or finish) shard ``shard = (I, M)`` of ``n`` exact pairs ``(x1,
    X_{1→0}(x1))`` of the named mixture and interpolant into ``out`` (module docstring).

    Deterministic per row for a given ``seed`` (any ``M``); resumable per chunk of
    ``CHUNK`` rows; a shard already complete is read back, not recomputed. ``rtol``: the
    reference flow's per-trajectory target (:class:`ReferenceFlow`; validated before
    anything is written). ``progress`` gets a line per chunk.
    """
    from .. import __version__

    if not isinstance(mixture, str):
        raise TypeError(f"mixture must be a name (str), got {type(mixture).__name__}")
    path = MixturePath(
        mixtures.by_name(mixture.replace("-", "_")), interpolants.by_name(interpolant)
    )
    n = as_count(n, "n")
    if not 1 <= n < 2**63:
        raise ValueError(f"n must be ≥ 1 and below 2^63, got {n}")
    index, shards = _check_shard(shard)
    seed = as_count(seed, "seed")
    if seed >= 2**63:
        raise ValueError(f"seed must be below 2^63, got {seed}")
    flow = ReferenceFlow(path, rtol=rtol)  # validates rtol before the folder is touched
    folder = check_writable(out, "out")
    start, stop = shard_rows(n, index, shards)
    width = max(5, len(str(shards)))
    name = f"shard-{index:0{width}d}-of-{shards:0{width}d}"
    params = {
        "format": FORMAT,
        "mixture": path.mixture.name,
        "interpolant": path.interpolant.name,
        "n": n,
        "shards": shards,
        "seed": seed,
        "dim": path.dim,
        "rtol": float(rtol),
        "block": BLOCK,
        "chunk": CHUNK,
    }
    run = json.dumps(params, sort_keys=True)
    final = folder / f"{name}.npz"
    partial = folder / f"{name}.partial"
    # files of another run are refused before the manifest is written, so that a refused
    # call leaves the folder as it found it; without a manifest (a first shard, or one
    # deleted to "reset" the folder) every shard and chunk file in it is checked — else
    # another M's shards had stayed beside this run's, mixed in by a reader (review)
    mine = [final, *sorted(partial.glob("chunk-*.npz"))]
    if not (folder / "manifest.json").exists():
        mine += sorted(folder.glob("shard-*.npz")) + sorted(folder.glob("shard-*.partial/*.npz"))
    for found in mine:
        if found.exists():
            _read(found, run, arrays=False)  # reads the file's run entry only
    _manifest(folder, {**params, "version": __version__})
    begun = time.perf_counter()
    if not final.exists():
        _compute(flow, partial, final, start, stop, seed, run, progress)
    else:
        _remove_leftovers(partial, final)
    data = _read(final, run)
    if data is None:
        raise ValueError(f"{final} is corrupt (cannot be read); delete it to compute it again")
    ratio = data["error_estimate"] / data["target"]
    return ReferenceShard(
        path=final,
        shard=index,
        shards=shards,
        start=start,
        stop=stop,
        max_error_ratio=float(ratio.max()) if ratio.size else 0.0,
        n_unresolved=int(data["unresolved"].size),
        seconds=time.perf_counter() - begun,
    )


def _check_shard(shard: object) -> tuple[int, int]:
    try:
        index, shards = shard  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"shard must be a pair (I, M), got {shard!r}") from None
    index, shards = as_count(index, "shard index"), as_count(shards, "shard count")
    if not 0 <= index < shards:
        raise ValueError(f"need 0 ≤ I < M for shard I/M, got {index}/{shards}")
    return index, shards


KEYS = ("x1", "x0", "error_estimate", "target", "unresolved")


def _compute(flow, partial, final, start, stop, seed, run, progress) -> None:
    """Solve the shard chunk by chunk into ``partial``, then gather into ``final``. If
    another process finishes the same shard meanwhile, its file is kept."""
    dim = flow.path.dim
    chunks = range(start, stop, CHUNK)
    gathered: dict[str, list[np.ndarray]] = {key: [] for key in KEYS}
    try:
        partial.mkdir(exist_ok=True)
        for k, lo in enumerate(chunks):
            hi = min(lo + CHUNK, stop)
            chunk = partial / f"chunk-{k:05d}.npz"
            arrays = _read(chunk, run) if chunk.exists() else None
            if arrays is None:
                if chunk.exists() and progress:
                    progress(f"{chunk.name} cannot be read (a truncated write): computing it again")
                x1 = _noise(seed, lo, hi, dim)
                solution = flow.solve(x1, 1.0, 0.0)
                arrays = {
                    "x1": x1,
                    "x0": solution.x,
                    "error_estimate": solution.error_estimate,
                    "target": solution.target,
                    "unresolved": np.asarray(solution.unresolved, dtype=np.int64) + lo,
                }
                _save(chunk, run=np.array(run), **arrays)
                if progress:
                    progress(
                        f"rows {lo}–{hi - 1} of {start}–{stop - 1} done ({k + 1}/{len(chunks)} chunks)"
                    )
            for key in KEYS:
                gathered[key].append(arrays[key])
    except FileNotFoundError:
        if final.exists():  # another process finished this shard and removed .partial
            return
        raise
    empty = {"x1": (0, dim), "x0": (0, dim)}
    out = {
        key: np.concatenate(v)
        if v
        else np.zeros(empty.get(key, (0,)), dtype=np.int64 if key == "unresolved" else float)
        for key, v in gathered.items()
    }
    _save(final, run=np.array(run), rows=np.arange(start, stop), **out)
    for k in range(len(chunks)):
        (partial / f"chunk-{k:05d}.npz").unlink(missing_ok=True)
    _remove_leftovers(partial, final)


def _remove_leftovers(partial: pathlib.Path, final: pathlib.Path) -> None:
    """Once the shard is complete: the temporary files of interrupted writes (in
    ``partial``, and of ``final`` beside it) untouched for :data:`STALE_SECONDS`, then
    ``partial`` if that leaves it empty (a younger file, maybe another process's write,
    stays for a later call)."""
    leftovers = [*partial.glob(".chunk-*.tmp"), *final.parent.glob(f".{final.name}.*.tmp")]
    for tmp in leftovers:
        try:
            if tmp.stat().st_mtime < time.time() - STALE_SECONDS:
                tmp.unlink()
        except OSError:  # another process's, renamed or removed meanwhile
            pass
    try:
        partial.rmdir()
    except OSError:  # not empty, or already removed
        pass
