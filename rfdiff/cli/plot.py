"""``rfdiff plot RESULT``: the standard figure of any result file, as ``STEM.pdf`` (vector) and ``STEM.png``.

The figure is :func:`rfdiff.plots.plot_result` of :func:`rfdiff.open_result` (``.nc`` results and rfdiff 0.1
``.npz`` ones); ``STEM`` defaults to the result's path without its suffix. ``rfdiff phase-diagram`` and
``rfdiff merge`` call :func:`draw` on the file they have just written.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import SpecError
from ._common import wrote

log = logging.getLogger("rfdiff")


def draw(result: Path, stem: Path | None = None, variable: str | None = None) -> list[Path]:
    """Open ``result``, draw its standard figure and write ``stem``.pdf / .png; returns the written paths."""
    import matplotlib.pyplot as plt

    from ..plots import plot_result, save_figure
    from ..results import open_result

    ds = open_result(result)
    fig = plot_result(ds, variable=variable)
    try:
        return save_figure(fig, stem if stem is not None else Path(result).with_suffix(""))
    finally:
        plt.close(fig)


def run(args) -> int:
    src = Path(args.result)
    if not src.is_file():
        raise FileNotFoundError(f"result file not found: {src}")
    stem = None
    if args.out is not None:
        stem = Path(args.out)
        if stem.is_dir():
            raise SpecError(f"--out is a file stem (STEM.pdf and STEM.png are written), but {stem} is a directory")
        if stem.suffix in (".pdf", ".png"):
            stem = stem.with_suffix("")
    wrote(*draw(src, stem, args.variable))
    return 0
