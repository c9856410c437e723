"""Argument checking shared by xgrad's public functions.

Each checker raises `TypeError` for the wrong kind of argument and
`ValueError` for a wrong value, with a message that names the argument, says
what was expected and what was given.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from typing import Any

import array_api_compat

from xgrad._infra.backend import is_numpy_scalar, library_of, namespace_of, refuse_numpy_subclass
from xgrad._infra.typing import Array, Device, Namespace

METHODS = ("central", "forward", "backward")


def check_callable(f: Any, name: str = "f") -> None:
    if not callable(f):
        raise TypeError(f"`{name}` must be callable; got {type(f).__name__}")


def listed(choices: Iterable[Any]) -> str:
    """``'a', 'b' or 'c'``: choices as a message lists them."""
    names = [repr(c) for c in choices]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def check_choice(value: Any, name: str, choices: Iterable[str], *, phrase: str | None = None) -> str:
    """`value` if it is one of the strings `choices`: the one check of a string option.

    Anything else, an unknown string or no string at all (an array, a set, a
    list), is a ValueError that names `name` and the choices (`phrase` says
    them otherwise) and, for what is no string, its type.

    Examples
    --------
    >>> check_choice("relu", "activation", ("sigmoid", "relu"))
    'relu'
    >>> check_choice({"relu"}, "activation", ("sigmoid", "relu"))
    Traceback (most recent call last):
    ValueError: `activation` must be 'sigmoid' or 'relu', as a string; got set
    """
    options = tuple(choices)
    phrase = listed(options) if phrase is None else phrase
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be {phrase}, as a string; got {_kind_of(value)}")
    if value not in options:
        raise ValueError(f"`{name}` must be {phrase}; got {value!r}")
    return value


def _kind_of(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def check_method(method: Any) -> str:
    return check_choice(method, "method", METHODS, phrase="one of " + ", ".join(map(repr, METHODS)))


def check_real(value: Any, name: str) -> float:
    """A real number: a Python int or float, or a NumPy-like 0-d scalar."""
    is_bool = type(value).__name__ in ("bool", "bool_")  # NumPy's too
    if is_bool or isinstance(value, str | bytes) or not hasattr(value, "__float__"):
        raise TypeError(f"`{name}` must be a real number; got {type(value).__name__}")
    if "complex" in str(getattr(value, "dtype", "")):  # float() would drop the imaginary part with a warning
        raise TypeError(f"`{name}` must be a real number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):  # arrays of several elements, complex
        raise TypeError(f"`{name}` must be a real number; got {value!r}") from None


def check_positive(value: Any, name: str) -> float:
    """A finite, strictly positive real number."""
    v = check_real(value, name)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"`{name}` must be positive and finite; got {value!r}")
    return v


def check_optional_positive(value: Any, name: str) -> float | None:
    """None, or a finite, strictly positive real number."""
    return None if value is None else check_positive(value, name)


def check_count(value: Any, name: str, *, minimum: int = 0) -> int:
    """An integer >= `minimum` (bools are refused)."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer; got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value}")
    return value


def of_library(xp: Namespace, a: Any) -> bool:
    """Whether `a` is an array (not a Python number) of the library `xp`."""
    if not array_api_compat.is_array_api_obj(a) or isinstance(a, (int, float, bool, complex)):
        return False
    try:
        return array_api_compat.array_namespace(a) is xp
    except TypeError:
        return False


def default_float(xp: Namespace, device: Device) -> Any:
    """The default real floating dtype of `xp` (float64 for NumPy)."""
    try:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=device)["real floating"]
    except (AttributeError, TypeError):
        return xp.float64


def as_float_array(x: Any, *, xp: Namespace | None = None, name: str = "x") -> tuple[Array, Namespace, Device]:
    """`x` as a real floating array, its namespace and device.

    Arrays keep their namespace and device; floating arrays keep their dtype;
    integer and boolean arrays are promoted to the namespace's default floating
    dtype. Python scalars and lists go to `xp` (NumPy when not given).
    """
    refuse_numpy_subclass(x, name)
    if is_numpy_scalar(x):  # a number: a 0-d NumPy array, or a Python number for `xp`
        x = _host_array(x, name) if xp is None else x.item()
    if not array_api_compat.is_array_api_obj(x):
        if xp is None:
            xp = array_api_compat.array_namespace(_host_array(x, name))
        try:
            x = xp.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be an array or a number; got {type(x).__name__}") from exc
    xp, device = namespace_of(x)
    if xp.isdtype(x.dtype, "real floating"):
        return x, xp, device
    if xp.isdtype(x.dtype, "complex floating"):
        raise TypeError(f"`{name}` must be real; got dtype {x.dtype}")
    if not xp.isdtype(x.dtype, ("integral", "bool")):
        raise TypeError(f"`{name}` must be an array of real numbers; got dtype {x.dtype}")
    x = xp.astype(x, default_float(xp, device))
    return x, xp, device


def _host_array(x: Any, name: str) -> Array:
    import numpy as np  # the host edge: Python numbers and lists become NumPy

    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        if isinstance(x, list | tuple) and "inhomogeneous" in str(exc):
            raise TypeError(f"`{name}` must be an array or a number; got {type(x).__name__}, ragged: its rows have "
                            "different lengths. Give rows of equal length (a rectangular array)") from None
        raise TypeError(f"`{name}` must be an array or a number; got {type(x).__name__}") from exc


def beyond_range(xp: Namespace, a: Array, dtype: Any) -> float | None:
    """The largest magnitude in `a` when a cast to the floating `dtype` would
    make it infinite (values of a wider float beyond `dtype`'s range), else None."""
    if not xp.isdtype(a.dtype, "real floating") or math.prod(a.shape) == 0:
        return None
    limit = float(xp.finfo(dtype).max)
    if float(xp.finfo(a.dtype).max) <= limit:
        return None
    largest = float(xp.max(xp.abs(a)))
    return largest if largest > limit else None


def fresh_copy(xp: Namespace, x: Array) -> Array:
    """A copy of `x` to hand to a user function, which may change its argument
    in place: the caller's array, and the point xgrad differences around, stay
    as they were. (Perturbed points are new arrays already.)"""
    lib = library_of(xp)
    return lib.copy(x) if lib is not None and lib.copy is not None else xp.asarray(x, copy=True)


def check_flag(value: Any, name: str) -> bool:
    """A bool (``True``/``False``, or a NumPy bool)."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"`{name}` must be True or False; got {type(value).__name__}")
    return bool(value)


def as_scalar(value: Any, xp: Namespace, device: Device, dtype: Any, what: str) -> Array:
    """The result of a user function as a 0-d array of `xp`, or a clear error.

    Python numbers take `dtype`. A 0-d array of `xp` is kept as it is; one of
    another library is converted exactly through a Python float. A complex
    value, or a floating value narrower than `dtype` (its differences would
    keep only its own digits), is refused.
    """
    if isinstance(value, complex) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        if isinstance(value, complex):
            raise TypeError(f"{what} must return a real number; got the complex number {value!r}")
        return xp.asarray(python_real(value, what), dtype=dtype, device=device)
    if not array_api_compat.is_array_api_obj(value):
        raise TypeError(f"{what} must return a number or a 0-d array; got {type(value).__name__}")
    if math.prod(value.shape) != 1:
        raise ValueError(
            f"{what} must return a scalar (one number); got an array of shape "
            f"{tuple(value.shape)}. Reduce it (e.g. with sum) or use numerical_diff "
            "for an elementwise function."
        )
    vxp = array_api_compat.array_namespace(value)
    check_result_dtype(vxp, value.dtype, xp, dtype, what)
    if vxp is not xp:
        return xp.asarray(float(value), dtype=dtype, device=device)  # exact for real dtypes up to float64
    value = xp.reshape(value, ())
    return value if xp.isdtype(value.dtype, "real floating") else xp.astype(value, dtype)  # ints, bools


def python_real(value: int | float, what: str) -> float:
    """A Python number a user function returned, as a float; an integer beyond
    the floating-point range (``10**400``) is a ValueError, not an OverflowError
    from deep inside.

    Examples
    --------
    >>> python_real(3, "`f`")
    3.0
    >>> python_real(10**400, "`f`")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: `f` returned the integer 1000000000...0000000000 (401 digits), beyond the range of floating ...
    """
    try:
        return float(value)
    except OverflowError:
        digits = str(abs(int(value)))
        shown = ("-" if value < 0 else "") + digits[:10] + "..." + digits[-10:]
        raise ValueError(f"{what} returned the integer {shown} ({len(digits)} digits), beyond the range of "
                         "floating point (about 1.8e308); return a float, or rescale f so that its values stay "
                         "below 1e308") from None


def same_library_result(value: Array, xp: Namespace, dtype: Any, what: str) -> Array:
    """An array a user function returned, in `dtype`: refused if it is of
    another library than `xp`, complex, or a float narrower than `dtype`."""
    vxp = array_api_compat.array_namespace(value)
    if vxp is not xp:
        raise TypeError(f"{what} must return an array of the library of `x`; got {type(value).__name__}")
    check_result_dtype(vxp, value.dtype, xp, dtype, what)
    return value if value.dtype == dtype else xp.astype(value, dtype)


def check_result_dtype(vxp: Namespace, vdtype: Any, xp: Namespace, dtype: Any, what: str) -> None:
    """Refuse a result dtype that is not real, or is a float narrower than `dtype`."""
    if vxp.isdtype(vdtype, "complex floating"):
        raise TypeError(f"{what} must return a real number; got dtype {vdtype}")
    if not vxp.isdtype(vdtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{what} must return a real number; got dtype {vdtype}")
    if vxp.isdtype(vdtype, "real floating") and vxp.finfo(vdtype).bits < xp.finfo(dtype).bits:
        raise TypeError(
            f"{what} returned a {vdtype} value for an `x` of dtype {dtype}: its differences "
            f"would keep only {vdtype}'s digits. Return {dtype} (e.g. compute in the dtype of "
            "its argument), or pass `x` in the narrower dtype"
        )
