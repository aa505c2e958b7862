"""The exception types of rfdiff (one module, so every layer raises, and the CLI catches, the same classes).

* :class:`SpecError` (a ``ValueError``): a spec or an argument is invalid; one line naming ``[section] key``.
* :class:`ConvergenceError` (a ``RuntimeError``): a self-consistent equation or a consistency check of its
  solution failed; it carries the worst ``residual`` (float) and the ``point`` where it occurred (a λ, a τ, a
  parameter dict). ``SpectrumConvergenceError`` is the same class under its old name.
* :class:`ResultFileError` (a ``ValueError``): a result or checkpoint file is corrupt, truncated or of the
  wrong kind; the message names the file.

Example::

    >>> try:
    ...     raise ConvergenceError("fixed point did not converge", residual=1e-3, point={"tau": 2.0})
    ... except RuntimeError as err:
    ...     print(err.residual, err.point)
    0.001 {'tau': 2.0}
"""

from __future__ import annotations

__all__ = ["SpecError", "ConvergenceError", "SpectrumConvergenceError", "ResultFileError"]


class SpecError(ValueError):
    """Invalid spec or argument: one line naming ``[section] key`` (and the closest valid key for a typo)."""

    def __init__(self, msg: str):
        super().__init__(" ".join(str(msg).split()))  # one line, whatever the embedded reprs hold


class ConvergenceError(RuntimeError):
    """Non-convergence (or a failed consistency check) of the theory's equations.

    ``str(err)`` is one line naming the residual and the point: ``"<message>: residual 3.1e-06 at λ = 0.5"``.
    """

    def __init__(self, message: str, *, residual: float, point):
        self.residual = float(residual)
        self.point = point
        if isinstance(point, dict):
            where = ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}" for k, v in point.items())
        else:
            where = f"{point:.6g}" if isinstance(point, float) else str(point)
        super().__init__(" ".join(f"{message}: residual {self.residual:.3g} at {where}".split()))


SpectrumConvergenceError = ConvergenceError  # old name, same class


class ResultFileError(ValueError):
    """A result or checkpoint file cannot be read (corrupt, truncated, not an rfdiff result)."""
