"""The error of a training run whose loss became non-finite."""

from __future__ import annotations

from typing import Any

from xgrad._numerics.descent import DivergenceError

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(DivergenceError):
    """:func:`xgrad.train`'s loss became non-finite.

    Attributes
    ----------
    iteration : int
        The 1-based iteration whose loss was non-finite (also ``.step``).
    result : TrainResult
        The partial result, its network holding the parameters of the last
        finite loss (also ``.last_finite``).
    """

    def __init__(self, message: str, *, iteration: int, result: Any) -> None:
        super().__init__(message, step=iteration, last_finite=result)
        self.iteration = iteration
        self.result = result
