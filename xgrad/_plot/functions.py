"""The book's functions that the figures draw, by name, and how a figure names
any function it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import array_api_compat

from xgrad._infra.typing import Array

__all__ = ["BOOK_FUNCTIONS", "BookFunction", "function_label", "function_name"]


def book_function_1(x: Array) -> Array:
    """The book's ``0.01 x² + 0.1 x``."""
    return 0.01 * x**2 + 0.1 * x


def _book_function_1_derivative(x: Array) -> Array:
    return 0.02 * x + 0.1


def book_function_2(x: Array) -> Array:
    """The book's ``x0² + x1²``, for one point ``(2,)`` or a stack ``(k, 2)``."""
    return array_api_compat.array_namespace(x).sum(x**2, axis=-1)


def book_function_tmp1(x0: Array) -> Array:
    """The book's ``x0² + 4²``: `function_2` along ``x1 = 4``."""
    return x0 * x0 + 4.0**2


def book_function_tmp2(x1: Array) -> Array:
    """The book's ``3² + x1²``: `function_2` along ``x0 = 3``."""
    return 3.0**2 + x1 * x1


def _twice(x: Array) -> Array:
    return 2.0 * x


def exp_function(x: Array) -> Array:
    return array_api_compat.array_namespace(x).exp(x)


@dataclass(frozen=True)
class BookFunction:
    """A function the figures draw by name: its formula, how many variables
    it takes and, for one variable, its exact derivative."""

    name: str
    f: Callable[[Array], Array]
    formula: str
    variables: int
    derivative: Callable[[Array], Array] | None = None

    @property
    def label(self) -> str:
        args = "x" if self.variables == 1 else "x0, x1"
        return f"{self.name}({args}) = {self.formula}"


BOOK_FUNCTIONS: dict[str, BookFunction] = {
    b.name: b
    for b in (
        BookFunction("function_1", book_function_1, "0.01x² + 0.1x", 1, _book_function_1_derivative),
        BookFunction("function_2", book_function_2, "x0² + x1²", 2),
        BookFunction("function_tmp1", book_function_tmp1, "x² + 4²", 1, _twice),
        BookFunction("function_tmp2", book_function_tmp2, "3² + x²", 1, _twice),
        BookFunction("exp", exp_function, "eˣ", 1, exp_function),
    )
}
"""The functions ``xgrad plot --function NAME`` draws, by the book's names."""



def _book_function(f: Callable[..., object]) -> BookFunction | None:
    return next((b for b in BOOK_FUNCTIONS.values() if b.f is f), None)


def function_name(f: Callable[..., object]) -> str:
    """What a figure calls `f`: a book function's name, a named function's
    ``__name__``, or ``f`` for a lambda or a callable object."""
    book = _book_function(f)
    if book is not None:
        return book.name
    name = getattr(f, "__name__", "")
    return name if isinstance(name, str) and name.isidentifier() else "f"


def function_label(f: Callable[..., object], variables: int = 1) -> str:
    """A legend entry for `f`: ``function_1(x) = 0.01x² + 0.1x`` for a book
    function, ``name(x)`` for any other."""
    book = _book_function(f)
    if book is not None:
        return book.label
    return f"{function_name(f)}({'x' if variables == 1 else 'x0, x1'})"
