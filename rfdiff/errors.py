"""Exception types of the package (one module, so every layer raises the same classes).

* :class:`ConvergenceError`: a self-consistent equation or a consistency check of its solution failed; it
  carries the worst ``residual`` (float) and the ``point`` where it occurred (a λ, a τ, a parameter dict).
  ``SpectrumConvergenceError`` is the same class under its old name.

Example::

    >>> try:
    ...     raise ConvergenceError("fixed point did not converge", residual=1e-3, point={"tau": 2.0})
    ... except RuntimeError as err:
    ...     print(err.residual, err.point)
    0.001 {'tau': 2.0}
"""

from __future__ import annotations

__all__ = ["ConvergenceError", "SpectrumConvergenceError"]


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
        super().__init__(f"{message}: residual {self.residual:.3g} at {where}")


SpectrumConvergenceError = ConvergenceError  # old name, same class
