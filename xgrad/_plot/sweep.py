"""The figure of a sweep: the chapter's lesson on the learning rate in one picture.

Left, the final validation accuracy (the test accuracy for runs without
validation data) against the learning rate on a log axis, one line per
combination of the other settings (the mean over seeds, each seed a dot);
middle, the final loss; runs that diverged are red crosses on the bottom edge
of the accuracy panel and the top edge of the loss panel; runs stopped early
by successive halving are grey squares at what they reached, apart from the
lines of the runs trained to the end. Right, the loss
curves of the best runs. Drawn without pyplot, like :mod:`xgrad.plot`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._infra.install import install_hint
from xgrad._infra.validate import check_count

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DIVERGED = "diverged"  # the label of the crosses
STOPPED = "stopped early (successive halving)"  # the label of the squares


def sweep_figure(runs: Sequence[Any], varied: Sequence[str], ranked: Sequence[Any], *, curves: int = 3) -> Figure:
    """Accuracy and loss against the learning rate, and the best runs' curves.

    Parameters
    ----------
    runs : sequence of SweepRun
        Every run of the sweep, those that diverged included.
    varied : sequence of str
        The settings that take several values (``lr`` and ``seed`` among them).
    ranked : sequence of SweepRun
        The runs to rank, the best first (those that diverged left out): the
        first is starred, and the first `curves` with a loss history have
        their curves drawn. The accuracy panel shows validation accuracy
        when the runs have it, what a sweep ranks by; else test accuracy.
    curves : int
        How many of the best runs' loss curves to draw.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels; the first two have a log x axis.

    Examples
    --------
    >>> from xgrad import History, SweepRun
    >>> runs = [SweepRun(str(lr), {"lr": lr, "seed": 0}, acc, acc, loss, lr > 1, 3 if lr > 1 else None,
    ...                  0.1, "local", "numpy", history=History(loss=[2.3, loss]))
    ...         for lr, acc, loss in [(0.01, 0.3, 2.0), (0.1, 0.8, 0.7), (10.0, 0.1, math.nan)]]
    >>> fig = sweep_figure(runs, ["lr", "seed"], [runs[1], runs[0]])
    >>> [ax.get_xscale() for ax in fig.axes]
    ['log', 'log', 'linear']
    >>> fig.axes[1].get_yscale()
    'log'
    """
    curves = check_count(curves, "curves")
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"the figure of a sweep needs matplotlib; install it with: {install_hint('plot')}") from exc
    fig = Figure(figsize=(16.5, 4.2), layout="constrained")
    acc_ax, loss_ax, curve_ax = fig.subplots(1, 3)
    validated = any(getattr(r, "val_acc", None) is not None for r in runs)
    acc = (lambda r: r.val_acc) if validated else (lambda r: r.test_acc)
    acc_name = "final validation accuracy" if validated else "final test accuracy"
    seeds = {r.settings.get("seed") for r in runs}
    mean = f" (mean over {len(seeds)} seeds)" if len(seeds) > 1 else ""
    for label, family in _families(runs, varied).items():
        _draw_family(acc_ax, loss_ax, label + mean if label else (acc_name + mean, "final loss" + mean), family, acc)
    _draw_diverged(acc_ax, loss_ax, [r for r in runs if r.diverged])
    _draw_stopped(acc_ax, loss_ax, [r for r in runs if _stopped(r)], acc)
    best = ranked[0] if ranked else None
    if best is not None and acc(best) is not None:
        acc_ax.plot([best.settings["lr"]], [acc(best)], "*", color="gold", markeredgecolor="black",
                    markersize=15, label="best run", zorder=3)
    finite = [r.loss for r in runs if not r.diverged and math.isfinite(r.loss)]
    if finite and min(finite) > 0:
        loss_ax.set_yscale("log")
    acc_ax.set(xscale="log", xlabel="learning rate", ylabel=acc_name, ylim=(-0.02, 1.02),
               title="Accuracy against the learning rate")
    loss_ax.set(xscale="log", xlabel="learning rate", ylabel="final loss", title="Loss against the learning rate")
    for ax in (acc_ax, loss_ax):
        if ax.get_legend_handles_labels()[0]:  # below the panel: it covers no point
            ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)
    _draw_curves(curve_ax, [r for r in ranked if _curve(r)][:curves], varied)
    return fig


def _families(runs: Sequence[Any], varied: Sequence[str]) -> dict[str, list[Any]]:
    """Runs grouped by the varied settings other than the learning rate and the seed (all
    under the label "" where there are none)."""
    keys = [k for k in varied if k not in ("lr", "seed")]
    groups: dict[str, list[Any]] = {}
    for r in runs:
        label = ", ".join(f"{k}={r.settings.get(k)}" for k in keys)
        groups.setdefault(label, []).append(r)
    return groups


def _draw_family(acc_ax: Axes, loss_ax: Axes, label: str | tuple[str, str], runs: list[Any],
                 acc: Callable[[Any], Any]) -> None:
    """One line per panel; `label` names the family, or what each panel shows (a pair)."""
    acc_label, loss_label = (label, label) if isinstance(label, str) else label
    ok = [r for r in runs if not r.diverged and not _stopped(r)]
    lrs = sorted({r.settings["lr"] for r in ok})
    accs = [_mean([acc(r) for r in ok if r.settings["lr"] == lr]) for lr in lrs]
    losses = [_mean([r.loss for r in ok if r.settings["lr"] == lr]) for lr in lrs]
    (line,) = acc_ax.plot(lrs, accs, "o-", label=acc_label)
    loss_ax.plot(lrs, losses, "o-", color=line.get_color(), label=loss_label)
    acc_ax.plot([r.settings["lr"] for r in ok], [_nan(acc(r)) for r in ok], ".", color=line.get_color(),
                alpha=0.4)
    loss_ax.plot([r.settings["lr"] for r in ok], [r.loss for r in ok], ".", color=line.get_color(), alpha=0.4)


def _draw_diverged(acc_ax: Axes, loss_ax: Axes, runs: list[Any]) -> None:
    if not runs:
        return
    lrs = [r.settings["lr"] for r in runs]
    acc_ax.plot(lrs, [0.0] * len(lrs), "x", color="tab:red", markersize=9, mew=2, label=DIVERGED)
    # on the top edge of the loss panel, whatever its scale
    loss_ax.plot(lrs, [0.97] * len(lrs), "x", color="tab:red", markersize=9, mew=2, label=DIVERGED,
                 transform=loss_ax.get_xaxis_transform())


def _stopped(run: Any) -> bool:
    return bool(getattr(run, "stopped", False)) and not run.diverged


def _draw_stopped(acc_ax: Axes, loss_ax: Axes, runs: list[Any], acc: Callable[[Any], Any]) -> None:
    """The runs stopped below the top rung, at the accuracy and loss they had then."""
    if not runs:
        return
    lrs = [r.settings["lr"] for r in runs]
    style = {"color": "tab:gray", "markerfacecolor": "none", "markersize": 7, "label": STOPPED}
    acc_ax.plot(lrs, [_nan(acc(r)) for r in runs], "s", **style)
    loss_ax.plot(lrs, [r.loss for r in runs], "s", **style)


def _draw_curves(ax: Axes, ranked: list[Any], varied: Sequence[str]) -> None:
    for r in ranked:
        loss = np.asarray(_curve(r), dtype=float)
        label = ", ".join(f"{k}={r.settings.get(k)}" for k in varied)
        ax.plot(np.arange(1, loss.size + 1), _smooth(loss), linewidth=1.0, label=label)
    ax.set(xlabel="iteration", ylabel="mini-batch loss (moving mean of 10)",
           title=f"Training curves of the {len(ranked)} best runs")
    if ranked:
        ax.legend(fontsize="small")


def _curve(run: Any) -> list[float]:
    """A run's losses: none where its history was not kept."""
    return [] if run.history is None else run.history.loss


def _smooth(loss: np.ndarray, width: int = 10) -> np.ndarray:
    if loss.size < width:
        return loss
    c = np.cumsum(np.concatenate([[0.0], loss]))
    out = loss.copy()
    out[width - 1:] = (c[width:] - c[:-width]) / width
    return out


def _mean(values: list[Any]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _nan(v: float | None) -> float:
    return math.nan if v is None else v

