"""The learning-rate range test: :func:`xgrad.lr_find`.

One short run of the book's network whose learning rate grows geometrically
from `start` to `stop`, recording each minibatch loss, stopping when the
smoothed loss blows up. It takes the training run's pieces: the settings it
shares with :func:`xgrad.train` are that record's entries and checks
(:data:`~xgrad._train.settings.TRAIN_SETTINGS`), the data are loaded and
checked by :func:`~xgrad._train.config.prepare_data`, the minibatches are
those of :class:`~xgrad._train.plan.MinibatchPlan`, and each iteration is the
core's :func:`~xgrad._net.core.sgd_step` with that iteration's rate. Its own
settings (:data:`LR_FIND_SETTINGS`) are declared here, once, for the function
and for ``xgrad lr-find``.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from xgrad._infra.backend import Backend, index_dtype, quiet_overflow, resolve_backend
from xgrad._infra.signals import StopRequest, stop_signals
from xgrad._infra.threads import thread_limits
from xgrad._infra.validate import check_positive, check_real
from xgrad._net.core import activation_named, sgd_step
from xgrad._net.net import TwoLayerNet
from xgrad._train import checks
from xgrad._train.config import TrainConfig, auto_threads, check_settings, prepare_data
from xgrad._train.data import host_floats, minibatch, train_data
from xgrad._train.lrcurve import RULE, LRFindResult, Smoother, blew_up, lr_schedule, smoothed, suggest
from xgrad._train.plan import MinibatchPlan
from xgrad._train.settings import Setting, by_name, doc_entry, fill_parameters

__all__ = ["LR_FIND_SETTINGS", "SHARED_DOCS", "lr_find", "lr_find_settings"]


def _stop(name: str, value: Any, given: Mapping[str, Any]) -> float:
    """`stop`: positive, finite and above `start` (checked before it)."""
    stop = check_positive(value, name)
    start = check_real(given["start"], "start")
    if not stop > start:
        raise ValueError(f"`{name}` ({value!r}) must be larger than `start` ({given['start']!r}): the range of "
                         "learning rates is empty; give a `start` below `stop`, e.g. 1e-5 and 10")
    return stop


def _smoothing(name: str, value: Any, given: Mapping[str, Any]) -> float:
    beta = check_real(value, name)
    if not 0 <= beta < 1:  # NaN too
        raise ValueError(f"`{name}` must be at least 0 (no smoothing) and below 1, e.g. 0.9; got {value!r}")
    return beta


def _blowup(name: str, value: Any, given: Mapping[str, Any]) -> float:
    factor = check_positive(value, name)
    if not factor > 1:
        raise ValueError(f"`{name}` must be larger than 1 (a factor over the lowest smoothed loss), e.g. 4; "
                         f"got {value!r}")
    return factor


LR_FIND_SETTINGS = (
    Setting("start", 1e-5, "float", check=checks.positive, parse=float, help="the first learning rate",
            doc="The first learning rate, positive and finite."),
    Setting("stop", 10.0, "float", check=_stop, parse=float, help="the last learning rate",
            doc="The last learning rate, larger than `start`; the rate grows by the same factor every "
                "iteration."),
    Setting("iters", 300, "int", check=checks.count(2), parse=int, help="iterations from --start to --stop",
            doc="Iterations from `start` to `stop`, at least 2 (both ends are run)."),
    Setting("smoothing", 0.9, "float", check=_smoothing, parse=float,
            help="factor of the loss's moving average (0: none)",
            doc="Factor ``beta`` of the exponential moving average of the loss, bias-corrected, in [0, 1); "
                "0 is no smoothing."),
    Setting("blowup", 4.0, "float", check=_blowup, parse=float,
            help="stop when the smoothed loss exceeds this many times its minimum",
            doc="Stop when the smoothed loss exceeds this factor times its lowest value so far (or a loss is "
                "not finite); larger than 1."),
)
"""The range test's own settings, in the order of its signature (after ``backend``)."""

SHARED_DOCS = {
    "dataset": "The data set, as in :func:`train`; ignored when `data` is given.",
    "activation": "The hidden layer's activation of the new network.",
    "hidden_size": "Units in the hidden layer.",
    "batch_size": "Samples per minibatch, drawn with replacement as :func:`train` draws them.",
    "seed": "Seeds the initial weights and the minibatches: the same as :func:`train`'s with this seed.",
    "dtype": "Floating type of the run.",
    "weight_init_std": "Standard deviation of the initial weights.",
    "threads": 'CPU threads, as in :func:`train` (``"auto"``, a number, or None for the libraries\' defaults).',
    "progress": "Show a progress bar (on stderr) with the loss and learning rate.",
    "data": "``((x_train, t_train), (x_test, t_test))`` host arrays instead of loading `dataset` (the test "
            "set is checked, not used).",
    "data_dir": "Where to look for the dataset files first; refused with `data`.",
    "device": "A device of the backend.",
}
"""The settings the range test shares with :func:`xgrad.train` (their defaults and checks are the
training record's), and what each means here."""


def lr_find_settings() -> list[Setting]:
    """Every setting of the range test, in its signature's order: ``backend``, its own, the shared ones."""
    train = by_name()
    return [train["backend"], *LR_FIND_SETTINGS, *(train[name] for name in SHARED_DOCS)]


def _describe(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with its signature and Parameters section made from :func:`lr_find_settings`."""
    params, lines = [], []
    for s in lr_find_settings():
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if s.positional else inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(s.name, kind, default=s.default, annotation=s.annotation))
        text = SHARED_DOCS.get(s.name, s.doc)
        kind_doc = s.doc_kind if s.default is not None or "optional" in s.doc_kind else s.doc_kind + ", optional"
        default = "" if s.default is None else (f' Default: ``"{s.default}"``.' if isinstance(s.default, str)
                                                 else f" Default: ``{s.default!r}``.")
        lines += doc_entry(s.name, kind_doc, text + default)
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    function.__doc__ = fill_parameters(function.__doc__ or "", lines)
    return function


def _checked(backend: Any, settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The range test's own settings and the training settings it shares, each checked once."""
    names = {s.name for s in lr_find_settings()}
    unknown = [k for k in settings if k not in names or k == "backend"]
    if unknown:
        hint = " (the range test sets the learning rate: give `start` and `stop`)" if unknown[0] == "lr" else ""
        raise TypeError(f"lr_find() got an unexpected keyword argument {unknown[0]!r}{hint}")
    given = {s.name: settings.get(s.name, s.default) for s in LR_FIND_SETTINGS}
    own = {s.name: s.checked(given[s.name], given) for s in LR_FIND_SETTINGS}
    shared = check_settings({"backend": backend, **{k: v for k, v in settings.items() if k in SHARED_DOCS}})
    return own, shared


@_describe
def lr_find(backend: str | Backend = "auto", **settings: Any) -> LRFindResult:
    """The learning-rate range test: one short run whose learning rate grows, and a suggested rate.

    A new network (as :func:`train` makes it, from `seed`) takes `iters`
    SGD steps on minibatches of the training set; step ``i`` (0-based) uses
    the learning rate ``start * (stop / start) ** (i / (iters - 1))``. Each
    step's minibatch loss is recorded (computed before the step), and
    smoothed by an exponential moving average with bias correction. The run
    stops early when the smoothed loss exceeds `blowup` times its lowest
    value so far, or a loss is not finite: that is the expected end of a
    range test, not an error.

    The suggested learning rate is **one tenth of the learning rate at the
    minimum of the smoothed loss**. At the minimum the rate is already about
    as large as the network tolerates (the loss turns upwards right after);
    a tenth of it is in the region where the loss still falls fast. With the
    defaults it lands within a factor of three of the best rate of the
    default :func:`sweep` of full runs: 2.0 times below it on MNIST, 2.8
    times below on Fashion-MNIST. The other common rule, the steepest
    descent of the smoothed loss, lands 3.5 and 2.4 times above it: further
    on average, and on the side where training becomes unstable (the
    documentation's page on the range test has the numbers).

    Parameters
    ----------
    (each setting, with its default)

    Returns
    -------
    LRFindResult
        The learning rates, losses and smoothed losses of the iterations run,
        the suggestion and its rule, and where the test stopped; draw it with
        :func:`xgrad.plot.lr_find_curve`.

    Raises
    ------
    TypeError, ValueError
        Before the run starts: an empty or non-positive range (``start >=
        stop``), a non-finite rate, fewer than 2 `iters`, or any setting
        :func:`train` refuses.

    Notes
    -----
    Ctrl-C (SIGINT) and SIGTERM stop the test after the current step: the
    partial record is returned, with the signal's name in ``interrupted``.

    Examples
    --------
    >>> import xgrad
    >>> result = xgrad.lr_find("numpy", start=1e-3, stop=10, iters=100, progress=False)
    >>> len(result.lrs) <= 100, result.lrs[0]
    (True, 0.001)
    >>> 0.01 < result.suggestion < 3
    True
    """
    own, s = _checked(backend, settings)
    cfg = TrainConfig.of(s)
    b = resolve_backend(backend, device=s["device"])
    (x_train, t_train), _ = prepare_data(cfg, s["data"], s["data_dir"])
    assert cfg.weight_init_std is not None  # a new network
    net = TwoLayerNet(x_train.shape[1], cfg.hidden_size, cfg.output_size, activation=cfg.activation,
                      weight_init_std=cfg.weight_init_std, dtype=cfg.dtype, xp=b.xp, device=b.device, seed=cfg.seed)
    n_threads = auto_threads(cfg, b, net.sizes) if s["threads"] == "auto" else s["threads"]
    lrs = lr_schedule(own["start"], own["stop"], own["iters"])
    with thread_limits(n_threads, backend=b), quiet_overflow(b):
        data = train_data(b, x_train, b.asarray(host_floats(x_train), dtype=net.dtype),
                          b.asarray(t_train, dtype=index_dtype(b.xp, b.device)), n_classes=cfg.output_size)
        plan = MinibatchPlan(seed=cfg.seed, n_train=data.n_train, batch_size=cfg.batch_size, backend=b)
        t0 = time.perf_counter()
        with stop_signals() as stop:
            losses, blew = _run(net, data, plan, lrs, own, stop, progress=s["progress"], name=b.name)
        seconds = time.perf_counter() - t0
    smooth = smoothed(losses, beta=own["smoothing"])
    stopped = len(losses) if blew else None
    keep = ("dataset", "activation", "hidden_size", "batch_size", "seed", "dtype", "weight_init_std")
    return LRFindResult(lrs=lrs[:len(losses)], loss=losses, smoothed_loss=smooth, suggestion=suggest(lrs, smooth),
                        rule=RULE, stopped_at=stopped, start=own["start"], stop=own["stop"], iters=own["iters"],
                        smoothing=own["smoothing"], blowup=own["blowup"],
                        settings={"backend": b.name, "device": b.device_name, **{k: getattr(cfg, k) for k in keep}},
                        seconds=seconds, interrupted=stop.signal)


def _run(net: TwoLayerNet, data: Any, plan: MinibatchPlan, lrs: list[float], own: Mapping[str, Any],
         stop: StopRequest, *, progress: bool, name: str) -> tuple[list[float], bool]:
    """The minibatch losses of the steps at `lrs`, up to the one where the smoothed loss blows up
    (or a `stop` request), and whether it blew up."""
    from tqdm.auto import tqdm

    act, xp, params = activation_named(net.activation), data.xp, net.params
    beta, factor = own["smoothing"], own["blowup"]
    losses: list[float] = []
    smoother, lowest = Smoother(beta), math.inf
    with tqdm(total=len(lrs), disable=not progress, unit="it", desc=f"lr-find ({name})",
              dynamic_ncols=True) as bar:
        for i, lr in enumerate(lrs):
            if stop:
                break
            rows, row = plan.rows(i)
            xb, tb = minibatch(data.images, data.labels, data.eye, rows[row, ...], levels=data.levels,
                               dtype=data.dtype, xp=xp)
            loss, params = sgd_step(params, xb, tb, lr=lr, activation=act, xp=xp, rows_sum_to_one=True)
            value = float(loss)
            losses.append(value)
            smooth = smoother.add(value)
            bar.update(1)
            bar.set_postfix(lr=f"{lr:.3g}", loss=f"{value:.3f}", refresh=False)
            if blew_up(value, smooth, lowest, factor):
                return losses, True
            lowest = min(lowest, smooth)
    return losses, False
