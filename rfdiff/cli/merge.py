"""``rfdiff merge DIR``: the shard files of one phase diagram → one grid-shaped result.

``rfdiff phase-diagram ... --shard I --num-shards N`` (or ``--shard auto`` in a job array) writes
``DIR/phase_diagram.shard-I-of-N.nc``; this command finds every such file in ``DIR``, checks that there is
exactly one N and that shards 0 .. N−1 are all there (an unfinished shard — only its ``.nc.partial.npz``
checkpoint — counts as missing), and merges them with :func:`rfdiff.sweep.merge_shards`, which refuses shards of
different problems (different resolved spec, fixed values, τ grid, quadrature or axes) by their content keys.
The merged Dataset (``phase_diagram.nc``, :mod:`rfdiff.results`) is bit-identical to an unsharded run.
Errors are one line: missing shards are named by index,
mixed N by the counts found (exit 2); a corrupt shard file exits 1.

Example::

    rfdiff merge runs/phase             # → runs/phase/phase_diagram.nc
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..spec import SpecError
from ._common import wrote

__all__ = ["run", "find_shards", "convert"]

log = logging.getLogger("rfdiff")

_SHARD = re.compile(r"phase_diagram\.shard-(\d+)-of-(\d+)\.nc")


def find_shards(directory) -> list[Path]:
    """The complete, ordered list of shard files in ``directory``; a one-line error otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such directory: {directory}")
    found: dict[int, dict[int, Path]] = {}
    for path in directory.iterdir():
        m = _SHARD.fullmatch(path.name)
        if m:
            found.setdefault(int(m[2]), {})[int(m[1])] = path
    if not found:
        raise FileNotFoundError(f"no shard files phase_diagram.shard-I-of-N.nc in {directory}")
    if len(found) > 1:
        counts = ", ".join(f"N={n} ({len(v)} file(s))" for n, v in sorted(found.items()))
        raise SpecError(f"{directory} holds shards of different splits ({counts}); keep one N per directory")
    (n, shards), = found.items()
    missing = [i for i in range(n) if i not in shards]
    if missing:
        unfinished = [i for i in missing
                      if (directory / f"phase_diagram.shard-{i}-of-{n}.nc.partial.npz").exists()]
        note = f" (unfinished, checkpoint only: {', '.join(map(str, unfinished))})" if unfinished else ""
        raise SpecError(f"missing shard(s) {', '.join(map(str, missing))} of {n} in {directory}{note}; "
                        f"rerun them with --shard I --num-shards {n}")
    extra = sorted(i for i in shards if i >= n)
    if extra:
        raise SpecError(f"shard index {extra[0]} is out of range for N={n} in {directory}")
    return [shards[i] for i in range(n)]


def run(args) -> int:
    from ..sweep import merge_shards

    paths = find_shards(args.dir)
    out = Path(args.out) if args.out else Path(args.dir) / "phase_diagram.nc"
    if out.is_dir():
        raise IsADirectoryError(f"--out must be a file path (.nc), but {out} is a directory")
    merge_shards(paths, out=out)
    log.debug("merged %d shards", len(paths))
    wrote(out)
    if not args.no_plot:
        from .dynamics import draw_phase
        from ..results import attr_json, open_result

        draw_phase(out, len(attr_json(open_result(out), "axes")))
    return 0


def convert(args) -> int:
    """``rfdiff convert OLD.npz [--out NEW.nc]``: an rfdiff ≤ 0.1 ``.npz`` result as a labelled ``.nc``."""
    from ..results import convert as _convert

    src = Path(args.file)
    if src.suffix != ".npz":
        raise SpecError(f"convert reads an old .npz result, got {src}")
    out = Path(args.out) if args.out else src.with_suffix(".nc")
    if out.suffix != ".nc":
        raise SpecError(f"--out must end in .nc, got {out}")
    wrote(_convert(src, out))
    return 0
