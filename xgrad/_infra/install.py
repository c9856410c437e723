"""How to install what xgrad needs from its checkout: the one place that
builds the hint. xgrad is not on the Python Package Index, so an extra is
installed from the checkout (``pip install ".[plot]"``), never as
``xgrad[plot]``."""

from __future__ import annotations

__all__ = ["install_hint"]


def install_hint(extra: str, *alternatives: str) -> str:
    """The command that installs xgrad's optional dependency group `extra`
    (and, after "or", its `alternatives`) from the checkout.

    Examples
    --------
    >>> install_hint("plot")
    'pip install ".[plot]" in the xgrad checkout'
    >>> install_hint("cuda12", "cuda13")
    'pip install ".[cuda12]" in the xgrad checkout (or ".[cuda13]")'
    """
    other = " (or " + ", ".join(f'".[{a}]"' for a in alternatives) + ")" if alternatives else ""
    return f'pip install ".[{extra}]" in the xgrad checkout{other}'
