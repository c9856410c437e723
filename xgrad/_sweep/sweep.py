"""Hyperparameter sweeps of :func:`xgrad.train`, in this process or on Dask.

The runs of a sweep are independent, so they go to an existing distributed
engine, Dask (``dask.distributed``): a local cluster of one single-threaded
worker per core, or any cluster a :class:`distributed.Client` reaches. A run
that diverges is a result; a worker that dies takes no run with it (Dask runs
it again elsewhere); with ``out=`` every finished run is on disk at once, so a
sweep started again after a crash does only what is missing.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any

from xgrad._infra.files import check_output_dir
from xgrad._sweep.executor import check_client, runner
from xgrad._sweep.grid import checked_run, expand, fingerprint, grid_axes, jsonable, refine_lrs, run_key, varied
from xgrad._sweep.halving import check_halving, check_rungs
from xgrad._sweep.result import SweepResult, score, write_atomic
from xgrad._sweep.rungs import climb
from xgrad._sweep.worker import SweepRun
from xgrad._train import checks
from xgrad._train.settings import NAMED, REFUSED, SINGLE, Setting, by_name, doc_entry, fill_parameters, record

__all__ = ["SWEEP_OPTIONS", "SweepResult", "SweepRun", "describe_sweep", "named_axes", "sweep"]

logger = logging.getLogger("xgrad")

SWEEP_OPTIONS = (
    Setting("seeds", (0,), "int | Sequence[int]", kind="int or list of int", parse=int, sweep=NAMED,
            terms=(("`seed`", "`--seeds`"),), help="one run per seed for every other setting",
            doc="One run per seed for every combination."),
    Setting("client", None, "Any", kind='None, "serial", str or distributed.Client', option="--scheduler",
            check=check_client,
            shown="a local cluster for this command",
            help="a Dask scheduler's address (tcp://HOST:8786), or 'serial' to run in this process",
            doc="Where the runs go. None starts a local Dask cluster for the call (one worker process per core, "
                "one BLAS thread each) and stops it after; a string is a scheduler's address "
                '(``"tcp://host:8786"``); a Client is used as it is (not closed). ``"serial"`` runs the grid in '
                "this process, one run after another, without Dask."),
    Setting("out", None, "str | os.PathLike[str] | None", kind="path, optional", parse=Path, shown="none",
            help="write sweep.json, sweep.png and runs/*/history.json here; rerunning skips finished runs",
            doc="A folder for ``sweep.json``, ``sweep.png`` and one ``runs/<run>/history.json`` per run, written "
                "as each run finishes. Runs already there (from an interrupted sweep with the same settings and "
                "data) are read back instead of run again."),
    Setting("refine", 0, "int", check=checks.count(0), parse=int,
            help="rounds that narrow the learning rates around the best (by validation accuracy)",
            doc="After the coarse grid, this many rounds that try two learning rates around the best one (by "
                "mean validation accuracy over the seeds, or final training loss without validation data) "
                "(halfway, on a log scale, to its neighbours), with the best run's other settings and every "
                "seed."),
    Setting("progress", True, "bool", check=checks.flag, option="--no-progress", help="no progress bar",
            shown="a progress bar on stderr",
            doc="A progress bar on stderr: runs done, best so far."),
    Setting("halving", None, "int | None", kind="int, optional", check=check_halving, parse=int, shown="off",
            help="successive halving: only the best 1/N of the runs go on at each rung of N times more iterations",
            doc="Successive halving: every run trains first for a rung of ``iters / halving**k`` iterations, and "
                "only the best ``1/halving`` of them (by validation accuracy, or final training loss without "
                "validation data) go on to the next rung, ``halving`` times longer, up to ``iters``; with as many "
                "rungs as keep at least one run to the top (8 runs with ``halving=3``: rungs ending at "
                "``iters // 3`` and ``iters``). A run that goes on resumes where it stopped, and gives the numbers "
                "of an uninterrupted run. On Dask a free worker promotes any run in the best ``1/halving`` of those "
                "done at its rung so far, else starts a new one (asynchronous halving); in this process every run "
                "does a rung before the best go on. Runs stopped early are marked ``stopped``, never ``best``. "
                "With `out`, each rung is written as it ends (``runs/<run>/rungs.json``, the run's state in "
                "``checkpoint.npz``) and read back by the same sweep started again. "
                "None (the default): every run trains for ``iters``."),
    Setting("retries", 2, "int", check=checks.count(0), parse=int, help="times a lost or failed run is run again",
            doc="Times Dask runs a task again after an error or a lost worker."),
)
"""The arguments of :func:`sweep` itself (and options of ``xgrad sweep``), beside the settings of its runs."""


def named_axes() -> list[Setting]:
    """The settings of the record that :func:`sweep` names, with their defaults in a sweep."""
    return [s for s in record() if s.sweep == NAMED]


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else f'"{value}"' if isinstance(value, str) else str(value)


def describe_sweep(function: Any) -> Any:
    """`function` (``sweep``) with its signature and Parameters made from the record and
    :data:`SWEEP_OPTIONS`: the named axes, the sweep's own arguments, then ``**train_settings``."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    axes = named_axes()
    params = [inspect.Parameter(s.name, keyword, default=s.sweep_value,
                                annotation=f"{s.annotation} | Sequence[{s.annotation}]") for s in axes]
    params += [inspect.Parameter(o.name, keyword, default=o.default, annotation=o.annotation) for o in SWEEP_OPTIONS]
    params.append(inspect.Parameter("train_settings", inspect.Parameter.VAR_KEYWORD, annotation="Any"))
    defaults = "; ".join(f"{s.name} {_shown(s.sweep_value)}" for s in axes)
    lines = doc_entry(", ".join(s.name for s in axes), "value or list", "Settings of :func:`xgrad.train`; a list "
                      f"(or tuple) is a grid axis. By default: {defaults}.")
    lines += [line for o in SWEEP_OPTIONS for line in doc_entry(o.name, o.doc_kind, o.doc)]
    single = ", ".join(f"``{s.name}``" for s in record() if s.sweep == SINGLE)
    refused = ", ".join(f"``{s.name}``" for s in record() if s.sweep == REFUSED)
    lines += doc_entry("**train_settings", "", "Any other setting of :func:`xgrad.train` (``iters``, ``dtype``, "
                       "``backend``, ``data``, ...), each a value or a list. ``data`` (arrays, never a grid) is sent "
                       f"to every worker once; {single} take one value for every run; {refused} are refused. "
                       '``backend="auto"`` (the default) uses CuPy on workers that see a GPU, e.g. one worker per GPU '
                       "with ``dask_cuda.LocalCUDACluster``, and NumPy elsewhere.")
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.Signature(params, return_annotation=returns)
    function.__doc__ = fill_parameters(function.__doc__ or "", lines)
    return function


@describe_sweep
def sweep(**arguments: Any) -> SweepResult:
    """Train once per combination of settings, in parallel, and compare.

    Parameters
    ----------
    (the named axes, the sweep's own arguments, the other settings)

    Returns
    -------
    SweepResult
        One :class:`SweepRun` per run; ``.best``, ``.to_table()``,
        ``.to_json()``, ``.figure()``.

    Raises
    ------
    TypeError, ValueError
        Before any run starts: an unknown or bad setting, an empty list.
    ImportError
        When Dask is needed (any `client` but ``"serial"``) and not installed.
    RuntimeError
        Before a local cluster starts (`client` None), when called from the
        top level of a script without ``if __name__ == "__main__":``, which
        every worker process would run again.
    KeyboardInterrupt
        Ctrl-C, or SIGTERM (as its subclass ``Terminated``), during a sweep:
        the runs in progress are dropped, never recorded as finished (in this
        process, ``client="serial"``, the run stops at its next step; on a
        local cluster too, and the cluster closes; on a cluster at an address
        or a Client, the runs are cancelled); the runs finished before are in
        `out`, and the same call with the same `out` runs only the rest.
        Nothing partial is returned.

    Notes
    -----
    Every run holds out ``validation=0.1`` of its training set by default
    (drawn with its seed; see :func:`xgrad.train`), and the sweep ranks runs
    by their final validation accuracy: ``best``, the refinement rounds and
    the figure's star. The test set is never used to choose; the test
    accuracy of the best run is the number to quote. With
    ``validation=None`` the runs train on the whole training set and are
    ranked by their final training loss (the table says so).

    A run gives bit for bit the numbers of ``xgrad.train`` with the same
    settings in this process (on the same backend): the seed fixes the weights
    and the mini-batches. A run that diverges is reported with the iteration
    (``diverged_at``) and its history up to the last finite loss.

    Examples
    --------
    >>> import numpy as np, xgrad
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 20)).astype(np.float32)
    >>> t = (x[:, :10] @ rng.normal(size=(10, 10))).argmax(axis=1)
    >>> result = xgrad.sweep(lr=[0.1, 1.0, 1e6], activation="relu", iters=50, seeds=[0, 1],
    ...                      data=((x, t), (x, t)), client="serial", progress=False)
    >>> len(result), result.best.settings["lr"]
    (6, 1.0)
    >>> [r.diverged for r in result if r.settings["lr"] == 1e6]
    [True, True]
    """
    own = {o.name: o.checked(arguments.pop(o.name, o.default), arguments) for o in SWEEP_OPTIONS}
    for s in record():  # the settings a sweep gives its runs unless told otherwise (validation)
        if s.sweep == SINGLE and s.sweep_value != s.default:
            arguments.setdefault(s.name, s.sweep_value)
    _check_validation(arguments.get("validation"))
    named = {s.name: arguments.pop(s.name, s.sweep_value) for s in named_axes()}
    data = arguments.pop("data", None)  # sent to the workers once, not a setting of each run
    axes = grid_axes({**named, "seed": own["seeds"]}, arguments)
    names, digest = varied(axes), fingerprint(data)
    todo = [(run_key(s, names, digest), s) for s in expand(axes, data)]
    halving = own["halving"]
    rungs = None if halving is None else check_rungs(halving, [s for _, s in todo], data)
    folder = _prepare_out(own["out"])
    with runner(own["client"], own["retries"]) as pool, _Progress(own["progress"]) as bar:
        runs = _round(pool, todo, data, folder, bar, 0, halving, len(todo))
        for k in range(1, own["refine"] + 1):
            more = [(run_key(s, names, digest), s) for s in _refinement(runs, axes, data)]
            if not more:
                break
            runs += _round(pool, more, data, folder, bar, k, halving, len(todo))
    result = SweepResult(runs, names, halving=halving, rungs=rungs)
    if folder is not None:
        _write_summary(result, folder)
    return result


def _check_validation(value: Any) -> None:
    """A sweep holds out a fraction of each run's training set; arrays would reach every run's settings and
    record. Without validation data, the runs are ranked by their loss, which is said once here."""
    if value is None:
        logger.warning("sweep: validation=None, so the runs are ranked by their final training loss (test "
                       "accuracy is never used to choose); give validation=0.1 to rank them by validation accuracy")
    elif isinstance(value, list | tuple):
        raise TypeError("`validation` in a sweep must be a fraction of the training set (e.g. 0.1, the default) or "
                        "None; give validation arrays to xgrad.train, or append them to `data`'s training set")


def _refinement(runs: list[SweepRun], axes: dict[str, list[Any]], data: Any) -> list[dict[str, Any]]:
    """The runs of the next round: new learning rates around the best one (by
    :func:`score`, the mean over seeds), with the best run's other settings,
    for every seed."""
    means: dict[tuple[str, float], list[float]] = {}
    family: dict[str, dict[str, Any]] = {}
    for r in (r for r in runs if not r.stopped):  # those trained to the end
        others = {k: v for k, v in r.settings.items() if k not in ("lr", "seed")}
        name = json.dumps(jsonable(others), sort_keys=True)
        family[name] = others
        means.setdefault((name, r.settings["lr"]), []).append(score(r))
    (name, best), s = max(((k, sum(v) / len(v)) for k, v in means.items()), key=lambda kv: kv[1])
    if s == float("-inf"):
        return []  # everything diverged: nothing to narrow down
    tried = [lr for (n, lr) in means if n == name]
    return [checked_run({**family[name], "lr": new, "seed": seed}, data)
            for new in refine_lrs(tried, best) for seed in axes["seed"]]


def _round(pool: Any, todo: list[tuple[str, dict[str, Any]]], data: Any, folder: Path | None, bar: _Progress,
           round_: int, halving: int | None, grid: int) -> list[SweepRun]:
    """The runs of one round: each trained to the end, or with successive halving (in rungs no
    shorter than those of the `grid` runs of the first round, which were checked)."""
    if halving is None:
        return _execute(pool, todo, data, folder, bar, round_)
    rungs = check_rungs(halving, [s for _, s in todo], data, most=grid)
    return climb(pool, todo, data, folder, bar, round_, rungs=rungs, halving=halving, write_run=_write_run)


def _execute(pool: Any, todo: list[tuple[str, dict[str, Any]]], data: Any, folder: Path | None,
             bar: _Progress, round_: int) -> list[SweepRun]:
    """Run `todo` (skipping runs found in `folder`), saving each as it ends;
    the runs come back in the order of `todo`."""
    done = {key: run for key, settings in todo if (run := _read_run(folder, key, settings)) is not None}
    if done:
        logger.info("%d of %d runs read back from %s", len(done), len(todo), folder)
    bar.add(len(todo), done.values())
    for run in pool.map([(k, s) for k, s in todo if k not in done], data, round_):
        if folder is not None:
            _write_run(folder, run)
        done[run.key] = run
        bar.add(0, [run])
    return [done[key] for key, _ in todo]


def _prepare_out(out: str | os.PathLike[str] | None) -> Path | None:
    """The output folder, made and checked for writing before any run starts."""
    if out is None:
        return None
    check_output_dir(out, "`out`", ("sweep.json", "sweep.png"))  # a file, a device, a read-only folder...
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run_file(folder: Path, key: str) -> Path:
    return folder / "runs" / key / "history.json"


def _write_run(folder: Path, run: SweepRun) -> None:
    """The run's history.json: its History's fields (a training history), and the run under "sweep_run"."""
    record = {**(run.history.to_dict() if run.history is not None else {}), "sweep_run": run.to_dict()}
    write_atomic(_run_file(folder, run.key), json.dumps(record).encode())


def _read_run(folder: Path | None, key: str, settings: dict[str, Any]) -> SweepRun | None:
    """A run finished by an earlier sweep with these `settings` (its key says
    so), or None (also for a damaged file: its history is checked as every
    stored history is)."""
    if folder is None or not _run_file(folder, key).exists():
        return None
    try:
        record = json.loads(_run_file(folder, key).read_text())
        about = record.pop("sweep_run")
        run = SweepRun.from_dict({**about, "settings": settings, "history": record, "resumed": True})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("running %s again: its history.json is unreadable (%s)", key, exc)
        return None
    if run.iters is not None and not run.diverged and run.iters < settings.get("iters", by_name()["iters"].default):
        return None  # stopped early by successive halving: not a finished run
    return run if run.key == key else None


def _write_summary(result: SweepResult, folder: Path) -> None:
    result.to_json(folder / "sweep.json")
    try:
        fig = result.figure()
    except ImportError as exc:
        logger.warning("no sweep.png: %s", exc)
        return
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    write_atomic(folder / "sweep.png", buffer.getvalue())


class _Progress:
    """A progress bar over the runs, with the best one so far."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.best, self.bar = enabled, None, None

    def __enter__(self) -> _Progress:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=0, disable=not self.enabled, unit="run", desc="sweep", dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.bar is not None
        self.bar.close()

    def add(self, total: int, finished: Any) -> None:
        bar = self.bar
        assert bar is not None
        bar.total += total
        for run in finished:
            if self.best is None or score(run) > score(self.best):
                self.best = run
            bar.update(1)
        if self.best is not None and score(self.best) > float("-inf"):
            acc = self.best.val_acc
            text = f"best lr={self.best.settings['lr']:g}" + (f" val acc {acc:.4f}" if acc is not None else
                                                               f" loss {self.best.loss:.4g}")
            bar.set_postfix_str(text, refresh=False)
        bar.refresh()
