"""The exception types of rfdiff (one module, so every caller catches the same classes).

* :class:`SpecError` (a ``ValueError``): a spec or an argument is invalid; the message names the parameter.
* :class:`ConvergenceError` (a ``RuntimeError``): a solver did not converge; carries the residual and the
  offending point.
* :class:`ResultFileError` (a ``ValueError``): a result or checkpoint file is corrupt, truncated or of the
  wrong kind; the message names the file.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SpecError", "ConvergenceError", "ResultFileError"]


class SpecError(ValueError):
    """Invalid spec or argument: one line naming ``[section] key`` (and the closest valid key for a typo)."""

    def __init__(self, msg: str):
        super().__init__(" ".join(str(msg).split()))  # one line, whatever the embedded reprs hold


class ConvergenceError(RuntimeError):
    """A solver did not converge: ``residual`` (float) at ``point`` (λ, τ or a parameter dict)."""

    def __init__(self, message: str, *, residual: float = float("nan"), point: Any = None):
        super().__init__(message)
        self.residual = residual
        self.point = point


class ResultFileError(ValueError):
    """A result or checkpoint file cannot be read (corrupt, truncated, not an rfdiff result)."""
