"""The figure of a learning-rate range test: the loss against the learning rate.
Exported by :mod:`xgrad.plot`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._plot.canvas import new_figure
from xgrad._train.lrcurve import read_lr_find

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def lr_find_curve(result: Any) -> Figure:
    """The minibatch loss and the smoothed loss against the learning rate (log axis),
    the suggested learning rate marked.

    Parameters
    ----------
    result : LRFindResult, dict or path
        What :func:`xgrad.lr_find` returns, its ``to_dict()``, or the path
        of the ``lr_find.json`` that ``xgrad lr-find --out`` writes.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: the losses as a thin line, the smoothed loss over them,
        the minimum of the smoothed loss as a dot and the suggestion as a
        dashed vertical line (none without a suggestion). Losses beyond
        the blow-up are cut off at the top so that the fall stays visible.

    Raises
    ------
    TypeError
        If `result` is none of the accepted kinds.
    ValueError
        If the record is malformed; for a file,
        :class:`xgrad.FileFormatError` naming it.

    Examples
    --------
    >>> from xgrad._train.lrcurve import RULE, LRFindResult
    >>> from xgrad.plot import lr_find_curve
    >>> r = LRFindResult([0.01, 0.1, 1.0, 10.0], [2.3, 2.0, 0.9, 9.0], [2.3, 2.1, 1.4, 4.4], 0.1, RULE, 4,
    ...                  0.01, 10.0, 4, 0.5, 3.0)
    >>> fig = lr_find_curve(r)
    >>> ax = fig.axes[0]
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'learning rate')
    >>> ax.get_legend_handles_labels()[1]
    ['mini-batch loss', 'smoothed loss', 'minimum of the smoothed loss', 'suggested lr = 0.1']
    """
    r = read_lr_find(result)
    lrs = np.asarray(r.lrs, dtype=float)
    loss, smooth = np.asarray(r.loss, dtype=float), np.asarray(r.smoothed_loss, dtype=float)
    fig, (ax,) = new_figure(panel=(6.0, 4.0))
    ax.plot(lrs, loss, linewidth=0.6, alpha=0.5, label="mini-batch loss")
    ax.plot(lrs, smooth, linewidth=1.6, label="smoothed loss")
    finite = np.isfinite(smooth)
    if finite.any():
        at = int(np.argmin(np.where(finite, smooth, np.inf)))
        ax.plot([lrs[at]], [smooth[at]], "o", color="black", label="minimum of the smoothed loss")
        start = smooth[finite][0]
        top = max(start, float(np.max(smooth[finite][: at + 1]))) * 1.3
        if np.any(loss[np.isfinite(loss)] > top):  # the blow-up, cut off
            ax.set_ylim(top=top)
    if r.suggestion is not None:
        ax.axvline(r.suggestion, linestyle="--", color="C2", label=f"suggested lr = {r.suggestion:.3g}")
    ax.set_xscale("log")
    ended = (f"stopped at iteration {r.stopped_at}" if r.stopped_at is not None
             else f"{len(r.lrs)} iterations")
    ax.set(xlabel="learning rate", ylabel="loss", title=f"Learning-rate range test ({ended})")
    ax.legend()
    about = ", ".join(str(r.settings[k]) for k in ("dataset", "backend", "dtype") if r.settings.get(k))
    if about:
        fig.suptitle(f"Two-layer network ({about})")
    return fig
