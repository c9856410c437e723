"""Type aliases shared by xgrad's modules.

The array API standard has no single array class, so these aliases are
deliberately loose: they document intent for readers and type checkers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeAlias

Array: TypeAlias = Any
"""An array of any array-API backend (NumPy, CuPy, PyTorch, JAX, ...)."""

Namespace: TypeAlias = ModuleType
"""An array-API namespace such as the one `array_namespace` returns."""

Device: TypeAlias = Any
"""A device object of some backend (``"cpu"``, a CuPy device, ...)."""

DType: TypeAlias = Any
"""A dtype object of some backend."""

__all__ = ["Array", "DType", "Device", "Namespace"]
