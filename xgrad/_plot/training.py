"""The training figure of chapter 4 (Figs 4-11 and 4-12): loss and accuracy
curves of a run. Exported by :mod:`xgrad.plot`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._plot.canvas import new_figure
from xgrad._train.record import read_history

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# -- Figs 4-11 and 4-12 -------------------------------------------------------
def training_curves(history: Any) -> Figure:
    """The loss per iteration (left) and the accuracies per epoch (right), the
    book's Figs 4-11 and 4-12.

    Parameters
    ----------
    history : TrainResult, History, dict or path
        What :func:`xgrad.train` returns, its ``history`` or ``to_dict()``,
        or the path of the ``history.json`` the command line writes. It
        needs ``loss`` (one value per iteration), ``eval_iters``,
        ``train_acc``, ``test_acc`` (one value per evaluation) and
        ``iters_per_epoch``; ``val_acc`` (a run with validation data) is
        drawn when present; ``backend``, ``device`` and ``dtype`` go into
        the title when present.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: the loss curve and the train, validation (when recorded)
        and test accuracies.

    Raises
    ------
    TypeError
        If `history` is none of the accepted kinds.
    ValueError
        If a field is missing or malformed, the accuracy lists do not match
        `eval_iters`, or evaluations lie outside the losses; for a file,
        :class:`xgrad.FileFormatError` naming it (also for bad JSON).

    Examples
    --------
    >>> from xgrad.plot import training_curves
    >>> history = {"loss": [2.3, 1.1, 0.6, 0.4], "eval_iters": [2, 4],
    ...            "train_acc": [0.8, 0.9], "test_acc": [0.78, 0.88],
    ...            "iters_per_epoch": 2}
    >>> fig = training_curves(history)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['iteration', 'epoch']
    """
    h = read_history(history)
    loss = np.asarray(h.loss, dtype=float)
    epochs = np.asarray(h.eval_iters, dtype=float) / h.iters_per_epoch
    fig, (left, right) = new_figure(2, panel=(5.5, 4.0))
    left.plot(np.arange(1, loss.size + 1), loss, linewidth=0.8, label="mini-batch loss")
    left.set(xlabel="iteration", ylabel="loss", title="Training loss per iteration")
    left.legend()
    right.plot(epochs, h.train_acc, "o-", label="train")
    if h.val_acc:
        right.plot(epochs, h.val_acc, "d-.", label="validation")
    right.plot(epochs, h.test_acc, "s--", label="test")
    right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy per epoch")
    right.legend(loc="lower right")
    about = ", ".join(v for v in (h.backend, h.device, h.dtype) if v is not None)
    if about:
        fig.suptitle(f"Two-layer network ({about})")
    return fig
