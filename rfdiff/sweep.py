"""Phase diagrams: one jitted, vmapped function evaluated over a parameter grid, sharded, chunked, resumable.

:func:`phase_diagram` takes ``fn(params: dict[str, scalar]) -> dict[str, array]`` and named axes
``{name: values}``; the Cartesian grid is flattened (C order), split into ``num_shards`` contiguous slices
(``shard`` picks one: multi-node arrays), each slice into chunks of ``chunk_size`` points. A chunk is padded to a
multiple of the device count, laid out over every local device with a
:class:`jax.sharding.NamedSharding` on a one-axis :class:`~jax.sharding.Mesh` and evaluated by
``jit(shard_map(vmap(fn)))``, each device on its own block (:func:`_batched`); after each chunk the partial
result is checkpointed atomically, so a killed run resumes at the next unfinished chunk with identical numbers. The result file is a labelled netCDF Dataset of
:mod:`rfdiff.results` (dims: the axis names, then each output's trailing dims; ``class`` numbered from 1);
shard files (dim ``point``) merge with :func:`merge_shards`.

Example::

    >>> import jax.numpy as jnp
    >>> out = phase_diagram(lambda q: {"r": jnp.stack([q["a"] * q["b"], q["a"] + q["b"]])},
    ...                     {"a": [1.0, 2.0], "b": [10.0, 20.0, 30.0]}, out_dims={"r": ("op",)},
    ...                     progress=False)
    >>> out["r"].shape, float(out["r"][1, 2, 0])
    ((2, 3, 2), 60.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
import time
import weakref

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .io import changed_inputs, content_key, key_digests, load_result, save_result
from .precision import float64
from .results import attr_json, build, class_coords, open_result, write

if TYPE_CHECKING:  # annotations only; no runtime import
    from typing import Any

    import xarray

__all__ = ["phase_diagram", "merge_shards", "shard_range"]


def shard_range(num_points: int, shard: int, num_shards: int) -> tuple[int, int]:
    """Contiguous flat-index slice [start, stop) of shard ``shard`` out of ``num_shards`` (balanced)."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ValueError(f"need 0 <= shard < num_shards, got shard={shard}, num_shards={num_shards}")
    return num_points * shard // num_shards, num_points * (shard + 1) // num_shards


_BATCHED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _batched(fn, mesh: Mesh):
    """jit(shard_map(vmap(fn))) over ``mesh``, cached per function object and devices so repeated diagrams of one
    fn compile once.

    Each device evaluates ``vmap(fn)`` on its own block of the chunk. Under plain ``jit(vmap(fn))`` on sharded
    inputs, the partitioner turns the predicate of every batched ``while_loop`` (a Newton loop runs until all its
    points converge) into an all-reduce across devices at every iteration, so the devices advance in lock step
    (regime-B 64 × 64 phase diagram on two host devices: 7.8 s warm that way, 4.5 s with ``shard_map``). Two
    XLA:CPU host devices with 1024 points each still hang either way (``rfdiff phase-diagram`` refuses > 512).
    """
    key = tuple(d.id for d in mesh.devices.flat)
    try:
        cache = _BATCHED.setdefault(fn, {})
    except TypeError:
        cache = {}
    if key not in cache:
        spec = PartitionSpec("grid")
        # check_vma=False: fn is per-point code with no collectives; its loops start from unsharded constants
        cache[key] = jax.jit(jax.shard_map(jax.vmap(fn), mesh=mesh, in_specs=(spec,), out_specs=spec,
                                           check_vma=False))
    return cache[key]


def _axes(axes: Mapping[str, Sequence[float]]):
    if not axes:
        raise ValueError("axes must name at least one parameter")
    out = {}
    for name, vals in axes.items():
        v = np.asarray(vals, dtype=np.float64)
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError(f"axis {name!r} must be a non-empty 1-d array of finite values")
        out[str(name)] = v
    return out


# The partial file is rewritten at most this often (and before an early return or on an interruption), not after
# every chunk: rewriting the whole partial result after each of the 256 chunks of the regime-B 64 × 64 diagram
# cost 0.9 s of its 22 s (and grows like chunks × points). A SIGKILL loses at most this much work.
CHECKPOINT_EVERY_S = 10.0


@float64
def phase_diagram(fn: Callable[[dict], dict], axes: Mapping[str, Sequence[float]], *,
                  out_dims: Mapping[str, Sequence[str]] | None = None,
                  out_coords: Mapping[str, Sequence] | None = None, chunk_size: int = 256,
                  path: str | Path | None = None, shard: int = 0, num_shards: int = 1,
                  devices: Sequence | None = None, progress: bool = True,
                  attrs: Mapping | None = None, max_chunks: int | None = None, key: Mapping | None = None,
                  resume: bool | None = None, as_dataset: bool = False):
    """Evaluate ``fn`` on the grid ``axes`` (see module docstring) and return labelled arrays.

    Runs under float64 (:mod:`rfdiff.precision`), whatever the caller's JAX setting: the point functions are the
    theory's (:func:`~rfdiff.theory.phase.timescale_fn`, ``window_fn``), which switch it on inside themselves, and
    a batch traced without it and run with it failed to lower (an int32/int64 mismatch in ``argmax``).

    * ``out_dims[name]``: names of the trailing dims of output ``name`` (e.g. ``("class",)``; default: the
      ``fn.out_dims`` attribute that :func:`~rfdiff.theory.phase.timescale_fn` and ``window_fn`` set);
      ``out_coords[dim]``: their coordinates (``(dim, values)`` for a non-index one such as ``class_name``;
      a ``class`` dim without coordinates is numbered 1..K).
    * ``path``: result file (.nc, :func:`rfdiff.results.write`). With ``num_shards == 1`` the arrays have shape
      (*axis sizes, *trailing); with shards they are flat over the shard's points (dim ``"point"``) and
      :func:`merge_shards` rebuilds the grid. A ``<path>.partial.npz`` checkpoint (not a result) is written
      every ``CHECKPOINT_EVERY_S`` seconds of compute, before returning early (``max_chunks``) and when an
      exception (Ctrl-C, an error in ``fn``) interrupts the loop, and removed at the end. ``attrs``: global
      attributes of the file (provenance of :func:`rfdiff.results.provenance`; missing keys get the defaults of a
      call without a spec).
    * ``as_dataset``: return the labelled :class:`xarray.Dataset` (as written to ``path``) instead of a dict.
    * ``devices``: defaults to ``jax.local_devices()`` (this process's devices, so independent job-array tasks
      never wait on each other); the chunk is sharded over all of them.
    * ``max_chunks``: evaluate at most this many chunks in this call (time-boxed jobs); if the slice is then
      unfinished, only the checkpoint is written and ``None`` is returned — call again to resume.
    * ``key``: the content that determines ``fn``'s output besides the grid (``fn`` itself cannot be hashed).
      The ``rfdiff phase-diagram`` command passes the resolved spec, the fixed parameter values, the τ grid and
      the quadrature node count. The checkpoint is keyed by :func:`rfdiff.io.content_key` of (axes, shard
      range, chunk, number of devices, ``key``, package version); a partial file with another key is recomputed
      from scratch (``resume=None``, the default) or refused with a ValueError naming the changed inputs (``resume=True``);
      ``resume=False`` always starts afresh. A resumed run is bit-identical to an uninterrupted one. Without a
      ``key`` no partial file is ever reused (``resume=True`` and ``max_chunks`` then raise ValueError). The result
      file stores ``grid_key`` (content key of axes and ``key``) so :func:`merge_shards` can refuse shards of
      different problems.
    """
    from tqdm.auto import tqdm

    axes = _axes(axes)
    if path is not None and Path(path).suffix != ".nc":
        raise ValueError(f"path must be a result file ending in .nc, got {path}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    names = list(axes)
    shape = tuple(v.size for v in axes.values())
    total = int(np.prod(shape))
    start, stop = shard_range(total, shard, num_shards)
    flat = np.stack([g.ravel() for g in np.meshgrid(*axes.values(), indexing="ij")], -1)[start:stop]
    npts = stop - start

    # local devices: each job-array task (one per node, or one per GPU) shards over what it can address itself;
    # jax.devices() would include other processes' devices under jax.distributed
    devices = list(jax.local_devices() if devices is None else devices)
    mesh = Mesh(np.array(devices), ("grid",))
    sharding = NamedSharding(mesh, PartitionSpec("grid"))
    ndev = len(devices)
    csize = -(-min(chunk_size, max(npts, 1)) // ndev) * ndev  # multiple of the device count
    nchunks = -(-npts // csize) if npts else 0
    batched = _batched(fn, mesh)

    partial = None if path is None else Path(str(path) + ".partial.npz")
    if key is None and (resume or max_chunks is not None):
        # without a content key nothing tells a partial of this fn from one of another fn: never reuse one
        raise ValueError("resuming a phase diagram needs key= (the content that determines fn's output: "
                         "spec, fixed values, τ grid, ...), so that a partial file of another problem is never reused")
    # what determines the partial results: the points (axes, shard range), their chunking and split over devices
    # (a batch's iterative solves run in lock step, so which points share a device moves the last bits), fn's
    # content (key)
    inputs = {"axes": axes, "range": [start, stop], "chunk": csize, "devices": ndev, "key": key}
    ckey, digests = content_key(**inputs), key_digests(**inputs)
    results: dict[str, np.ndarray] | None = None
    done = np.zeros(nchunks, bool)
    if partial is not None and partial.exists() and resume is not False and key is not None:
        arrs, meta = load_result(partial)
        if meta.get("key") == ckey:
            done = arrs.pop("__done__").astype(bool)
            results = arrs
        elif resume:
            what = ", ".join(changed_inputs(meta.get("key_inputs"), digests))
            raise ValueError(f"cannot resume {partial}: it was computed for other inputs (changed: {what}); "
                             "drop resume to recompute")

    bar = tqdm(total=nchunks, initial=int(done.sum()), disable=not progress, desc="phase diagram")
    evaluated = 0
    saved = {"at": time.monotonic(), "pending": False}

    def checkpoint():
        if partial is not None and saved["pending"] and results is not None:
            save_result(partial, {**results, "__done__": done}, {"key": ckey, "key_inputs": digests})
        saved.update(at=time.monotonic(), pending=False)

    try:
        for j in range(nchunks):
            if done[j]:
                continue
            if max_chunks is not None and evaluated >= max_chunks:
                checkpoint()
                bar.close()
                return None
            evaluated += 1
            lo, hi = j * csize, min((j + 1) * csize, npts)
            block = np.empty((csize, len(names)))
            block[: hi - lo] = flat[lo:hi]
            block[hi - lo:] = flat[lo]  # padding: repeats a valid point, discarded below
            params = {n: jax.device_put(block[:, i], sharding) for i, n in enumerate(names)}
            out = jax.tree.map(np.asarray, batched(params))
            if not isinstance(out, dict):
                raise ValueError("fn must return a dict of arrays")
            if results is None:
                results = {k: np.full((npts, *v.shape[1:]), np.nan, v.dtype if v.dtype.kind == "f" else np.float64)
                           for k, v in out.items()}
            for k, v in out.items():
                results[k][lo:hi] = v[: hi - lo]
            done[j] = True
            saved["pending"] = True
            if time.monotonic() - saved["at"] >= CHECKPOINT_EVERY_S:
                checkpoint()
            bar.update(1)
    except BaseException:
        checkpoint()  # an interruption (Ctrl-C, an error in fn, a time limit's signal) keeps the finished chunks
        raise
    bar.close()
    results = results or {}

    # default: the names fn declares itself (timescale_fn, window_fn: their per-class outputs have dim "class")
    out_dims = {k: tuple(v) for k, v in (out_dims if out_dims is not None else getattr(fn, "out_dims", {})).items()}
    data_vars: dict[str, tuple] = {}
    for k, v in results.items():
        trailing = out_dims.get(k, tuple(f"{k}_dim{i}" for i in range(v.ndim - 1)))
        if len(trailing) != v.ndim - 1:
            raise ValueError(f"out_dims[{k!r}] has {len(trailing)} names for {v.ndim - 1} trailing dims")
        if num_shards == 1:
            v = v.reshape(*shape, *v.shape[1:])
        data_vars[k] = ((*names, *trailing) if num_shards == 1 else ("point", *trailing), v)
    coords: dict[str, Any] = dict(axes) if num_shards == 1 else {"point": np.arange(start, stop, dtype=np.int64)}
    coords.update({dim: c if isinstance(c, tuple) else np.asarray(c) for dim, c in (out_coords or {}).items()})
    sizes = {d: n for dims, v in data_vars.values() for d, n in zip(dims, np.shape(v))}
    if "class" in sizes and "class" not in coords:
        coords.update(class_coords(sizes["class"]))
    meta = {**dict(attrs or {}), "axes": names, "grid": {k: v.tolist() for k, v in axes.items()},
            "grid_shape": list(shape), "range": [start, stop], "shard": shard, "num_shards": num_shards,
            "grid_key": str(content_key(axes=axes, key=key)),
            "grid_key_inputs": key_digests(axes=axes, key=key)}
    results = {k: v for k, (_, v) in data_vars.items()}
    ds = build("phase_diagram", data_vars, coords=coords, attrs=meta) if (path is not None or as_dataset) else None
    if path is not None:
        assert ds is not None  # built above whenever a path is given
        write(path, ds)
        partial.unlink(missing_ok=True)
    return ds if as_dataset else results


def merge_shards(paths: Sequence[str | Path], out: str | Path | None = None) -> "xarray.Dataset":
    """Merge the shard files (.nc) of one :func:`phase_diagram` into the grid-shaped Dataset (checks coverage);
    writes it to ``out`` (.nc) if given. The merged numbers are those of an unsharded run, bit for bit."""
    if not paths:
        raise ValueError("merge_shards needs at least one file")
    parts = [open_result(p) for p in paths]
    meta = [{k: attr_json(ds, k) for k in ("axes", "grid", "grid_shape", "range", "grid_key",
                                           "grid_key_inputs") if k in ds.attrs} for ds in parts]
    m0 = meta[0]
    for p, m in zip(paths, meta):
        if m.get("axes") != m0.get("axes") or m.get("grid") != m0.get("grid"):
            raise ValueError("shard files come from different grids (axes or coordinates differ)")
        if m.get("grid_key") is None or m["grid_key"] != m0.get("grid_key"):
            what = ", ".join(changed_inputs(m0.get("grid_key_inputs"), m.get("grid_key_inputs") or {}))
            raise ValueError(f"shard {p} was computed for another problem than {paths[0]} (changed: {what})")
    order = sorted(range(len(parts)), key=lambda i: meta[i]["range"][0])
    total = int(np.prod(m0["grid_shape"]))
    pos = 0
    for i in order:
        if meta[i]["range"][0] != pos:
            raise ValueError(f"shards do not tile the grid: gap or overlap at flat index {pos}")
        pos = meta[i]["range"][1]
    if pos != total:
        raise ValueError(f"shards cover {pos} of {total} grid points")
    names, shape = list(m0["axes"]), tuple(m0["grid_shape"])
    first = parts[order[0]]
    data_vars: dict[str, tuple] = {}
    for k, var in first.data_vars.items():
        flat = np.concatenate([parts[i][k].values for i in order])
        data_vars[str(k)] = ((*names, *var.dims[1:]), flat.reshape(*shape, *flat.shape[1:]))
    coords = {k: np.asarray(v, np.float64) for k, v in m0["grid"].items()}
    for name, c in first.coords.items():
        if "point" not in c.dims:
            coords[name] = (c.dims, c.values) if name not in c.dims else c.values
    attrs = {**first.attrs, "range": [0, total], "shard": 0, "num_shards": 1, "merged_from": len(parts)}
    ds = build(None, data_vars, coords=coords, attrs=attrs)
    if out is not None:
        write(out, ds)
    return ds
