"""The settings of a training run, once: :data:`TRAIN_SETTINGS`.

Each :class:`Setting` says everything about one keyword of :func:`xgrad.train`:
its default, type, choices, help (for ``--help``) and documentation (for
``train``'s docstring), its command-line spelling, its one check, and its
roles: recorded in the run's config (checkpoints, ``history.json``) or not,
free to differ when resuming, and what a sweep does with it. ``train``'s
signature and docstring, :class:`~xgrad._train.config.TrainConfig`, the
options of ``xgrad train`` and ``xgrad sweep``, the grid of
:func:`xgrad.sweep` and the comparison of a checkpoint's settings are all
derived from it: adding a setting is adding an entry.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xgrad._datasets.mnist import DATASETS, dataset_spelling
from xgrad._infra.backend import BACKENDS
from xgrad._net.args import DTYPES
from xgrad._net.core import ACTIVATIONS
from xgrad._train import checks
from xgrad._train.checks import CHECKPOINT_EVERY, GRADS, Check, check_choice, on_off_auto

__all__ = ["AXIS", "DEFAULTS", "DEFAULT_LRS", "GRADS", "NAMED", "REFUSED", "RENAMED", "SHARED", "SINGLE",
           "TRAIN_SETTINGS", "Setting", "by_name", "current_names", "describe", "doc_entry", "fill_parameters",
           "on_off_auto", "record"]

# what a sweep does with a setting
NAMED = "named"  # a grid axis named in sweep's signature, with its sweep default; a list on the command line
AXIS = "axis"  # one value for every run, or a list (a grid axis)
SINGLE = "single"  # one value for every run, never a grid axis
SHARED = "shared"  # sent to every worker once, not a setting of each run (`data`)
REFUSED = "refused"  # a sweep refuses it (`refused` says why)

DEFAULT_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
"""Learning rates three times apart (roughly): the coarse grid of a sweep."""

_UNSET: Any = object()


@dataclass(frozen=True)
class Setting:
    """One setting: a keyword of :func:`xgrad.train` (or of :func:`xgrad.sweep`'s own).

    `annotation` is its type in the signature; `kind` the type as the
    docstring says it (derived from the choices or the annotation when
    empty). `check` returns the value normalised or raises (see
    :mod:`xgrad._train.checks`); `choices` are checked after it. `option` is
    the command-line spelling (derived from the name when empty, None for
    none), `parse` how the command line reads its text, `shown` how ``--help``
    shows the default (the default itself when None), `terms` other phrases
    of messages as the command spells them.
    """

    name: str
    default: Any
    annotation: str
    help: str
    doc: str
    kind: str = ""
    check: Check | None = None  # None: checked where it is used (resolve_backend, prepare_data)
    choices: Collection[str] | None = None  # read when used: a table may grow (ACTIVATIONS)
    option: str | None = ""
    parse: Callable[[str], Any] | None = None
    shown: str | None = None
    terms: tuple[tuple[str, str], ...] = ()
    recorded: bool = False  # in the run's config: checkpoints and history.json
    free: bool = False  # may differ between a run and its resumption
    net_own: bool = False  # None: the default for a new network, the network's own with `net`
    own: Callable[[Any], Any] | None = None  # the network's own value (None: refused with `net`)
    positional: bool = False  # train's first argument
    old_names: Mapping[str, str] = field(default_factory=dict)  # an old name -> a note on it
    sweep: str = AXIS
    refused: str = ""  # why a sweep refuses it
    sweep_default: Any = _UNSET
    sweep_help: str = ""
    stored: Callable[[Any], Any] | None = None  # how the run's config records the value (None: as it is)

    def __post_init__(self) -> None:
        if self.option == "":
            object.__setattr__(self, "option", "--" + self.name.replace("_", "-"))

    @property
    def keyword_default(self) -> Any:
        """The default in the signature: None for the net's own settings."""
        return None if self.net_own else self.default

    @property
    def sweep_value(self) -> Any:
        """The default in a sweep."""
        return self.default if self.sweep_default is _UNSET else self.sweep_default

    @property
    def doc_kind(self) -> str:
        """The type as a numpydoc docstring writes it: ``int, optional``, ``{"a", "b"}``."""
        if self.kind:
            return self.kind
        optional = ", optional" if self.keyword_default is None else ""
        if self.choices is not None:
            return "{" + ", ".join(f'"{c}"' for c in self.choices) + "}" + optional
        return self.annotation.replace(" | None", "").replace(" | ", " or ") + optional

    def checked(self, value: Any, given: Mapping[str, Any]) -> Any:
        """`value` normalised by the setting's one check and choices."""
        if self.check is not None:
            value = self.check(self.name, value, given)
        if self.choices is not None:
            value = check_choice(self.name, value, self.choices)
        return value


def _spelled(name: str, value: Any, given: Mapping[str, Any]) -> Any:
    return dataset_spelling(value)  # 'fashion_mnist' is 'fashion-mnist'; the choices check it


_SAVED = "runs are saved whole under `out=` as they finish"

TRAIN_SETTINGS = (
    Setting("backend", "auto", "str | Backend", positional=True,
            help="auto (CuPy if a GPU works, else NumPy), " + ", ".join(BACKENDS),
            sweep_help="auto (CuPy on workers with a GPU, else NumPy), " + ", ".join(BACKENDS),
            doc='``"auto"`` (CuPy where a CUDA device works, else NumPy) or one of '
                + ", ".join(f'``"{b}"``' for b in BACKENDS) + "."),
    Setting("dataset", "mnist", "str", choices=DATASETS, check=_spelled, recorded=True,
            help="the data set", doc="Read by :func:`load_mnist`; ignored when `data` is given."),
    Setting("activation", "sigmoid", "str", choices=ACTIVATIONS, recorded=True, net_own=True,
            own=lambda net: net.activation, sweep=NAMED, help="the hidden layer's activation",
            doc="The hidden layer's activation (see :class:`TwoLayerNet`). With `net`, the net's own; giving "
                "another is an error."),
    Setting("hidden_size", 50, "int", check=checks.count(1), parse=int, recorded=True, net_own=True,
            own=lambda net: net.sizes[1], sweep=NAMED, help="units in the hidden layer",
            doc="Units in the hidden layer. With `net`, the net's own; giving another is an error."),
    Setting("iters", 10_000, "int", check=checks.count(0), parse=int, recorded=True, free=True,
            help="SGD iterations", doc="SGD iterations (minibatch steps)."),
    Setting("batch_size", 100, "int", check=checks.count(1), parse=int, recorded=True, sweep=NAMED,
            help="samples per minibatch, drawn with replacement",
            doc="Samples per minibatch, drawn with replacement as in the book. It may not exceed the training "
                "set."),
    Setting("lr", 0.1, "float", check=checks.positive, parse=float, recorded=True, sweep=NAMED,
            sweep_default=DEFAULT_LRS, help="learning rate", sweep_help="learning rates",
            doc="The learning rate, positive and finite."),
    Setting("gradient", "backprop", "str", choices=GRADS, recorded=True,
            old_names={"grad": "In :func:`gradient_descent`, ``grad`` is a function, not a choice."},
            help="backprop (exact to rounding), or numerical: the chapter's central differences, about 2 x "
                 "parameters forward passes per step, for checking and teaching",
            doc="How gradients are computed: backpropagation, exact to rounding, or ``\"numerical\"``, the chapter's "
                "central differences (:meth:`TwoLayerNet.numerical_gradient`) with step `h`: about two forward "
                "passes per parameter at every step (80,000 for the 784-50-10 network), for checking backprop "
                "and for teaching, not for training fast."),
    Setting("h", None, "float | None", check=checks.step, parse=float, recorded=True,
            shown="by each parameter's dtype and size", help="step of the numerical gradient",
            doc='Step of the numerical gradient when ``gradient="numerical"``; by default chosen from each '
                "parameter's dtype and size."),
    Setting("eval_every", None, "int | None", check=checks.optional_count(0), parse=int, recorded=True,
            free=True, shown="one epoch", help="iterations between evaluations, 0 for none",
            doc="Iterations between accuracy evaluations (and one at the end); one epoch by default, 0 for "
                "none."),
    Setting("validation", None, "float | tuple | None", kind="float or (x_val, t_val), optional",
            check=checks.validation, parse=checks.validation_option, stored=checks.stored_validation,
            terms=((", explicit (x_val, t_val) arrays,", ""),),
            recorded=True, sweep=SINGLE, sweep_default=0.1,
            help="fraction of the training set held out to validate on (never trained on), or 'none'",
            sweep_help="fraction of the training set held out to rank the runs on, or 'none' (rank by loss)",
            doc="Validation data, held out from training: a fraction in (0, 1) of the training set, drawn with "
                "the seed (its own stream, apart from the weights' and the minibatches'), or explicit "
                "``(x_val, t_val)`` host arrays, checked as the training data are. Each evaluation records the "
                "validation accuracy and loss (``val_acc``, ``val_loss``). ``None`` holds out nothing. A sweep "
                "holds out 0.1 by default and ranks its runs by validation accuracy, never by test accuracy."),
    Setting("seed", 0, "int", check=checks.count(0), parse=int, recorded=True, sweep=REFUSED,
            refused="give the seeds as `seeds=[...]`", help="seeds the initial weights and the minibatch order",
            doc="Seeds the initial weights and the minibatch order; the same seed gives the same run on every "
                "backend."),
    Setting("dtype", "float32", "str", choices=DTYPES, recorded=True, net_own=True, own=checks.net_dtype_name,
            help="floating type of the run",
            doc="float32 is about twice as fast as float64 and as accurate for training. With `net`, the net's "
                "dtype."),
    Setting("weight_init_std", 0.01, "float", check=checks.positive, parse=float, recorded=True, net_own=True,
            help="standard deviation of the initial weights",
            doc="Standard deviation of the initial weights. With `net` (whose weights are already drawn), "
                "giving it is an error."),
    Setting("threads", "auto", "int | str | None", kind='int, "auto" or None', check=checks.threads,
            parse=checks.threads_option, terms=(("'auto' or None", "'auto' or 'default'"),),
            help="CPU threads (BLAS, OpenMP, torch): auto, a number or 'default'",
            doc="Threads of every CPU pool the backend computes with, restored after the run (see "
                ":func:`thread_limits`: BLAS and OpenMP, PyTorch's intra-op pool; not XLA's pools under JAX, "
                'nothing under CuPy). ``"auto"`` uses one thread for small matrices (the book\'s network), much '
                "steadier on a busy machine, or two when a second core is idle as the run starts and the library "
                "gives the same bits on two threads (PyTorch does; NumPy's OpenBLAS does not, and stays on one), "
                "and the library's default for large ones; ``None`` leaves the libraries' defaults."),
    Setting("progress", True, "bool", check=checks.flag, option="--no-progress", recorded=True, free=True,
            sweep=REFUSED, refused="the sweep shows one progress bar for all runs (`progress=`)",
            help="no progress bar", doc="Show a progress bar (on stderr) with the loss, accuracy and ETA."),
    Setting("data", None, "Any", kind="tuple, optional", option=None, sweep=SHARED, help="",
            doc="``((x_train, t_train), (x_test, t_test))`` host arrays, instead of loading `dataset`; labels "
                "are integer class indices."),
    Setting("data_dir", None, "str | os.PathLike[str] | None", kind="path, optional", check=checks.data_dir,
            parse=Path, shown="$XGRAD_DATA_DIR, then the cache", sweep=SINGLE, help="where the dataset files are",
            sweep_help="where the dataset files are (on every worker)",
            doc="Where to look for the dataset files first; refused with `data`, which it would not affect."),
    Setting("net", None, "TwoLayerNet | None", check=checks.check_net, option=None, sweep=REFUSED,
            refused="every run starts from its own seeded network", help="",
            doc="Continue training this network instead of a new one. Its activation, dtype, sizes, backend and "
                "device are those of the run; settings given explicitly must agree with them."),
    Setting("checkpoint", None, "str | os.PathLike[str] | None", kind="path, optional", check=checks.checkpoint,
            parse=Path, shown="none", sweep=REFUSED, refused=_SAVED, help="save the state here as it trains",
            doc="Save the state every `checkpoint_every` iterations (and at the end, and when stopped) to this "
                "``.npz`` file, atomically. Its folder must be writable; this is checked before training "
                "starts."),
    Setting("checkpoint_every", None, "int | None", check=checks.checkpoint_every, parse=int,
            shown=str(CHECKPOINT_EVERY), sweep=REFUSED, refused=_SAVED, help="iterations between checkpoints",
            doc=f"Iterations between checkpoints; {CHECKPOINT_EVERY} by default. Only with `checkpoint`: without "
                "it nothing would be saved, so giving it is an error."),
    Setting("resume", False, "bool", check=checks.resume, terms=(("`resume=True`", "`--resume`"),),
            sweep=REFUSED, refused="rerunning a sweep with the same `out=` skips the runs already done",
            help="continue from --checkpoint if it exists",
            doc="Start from `checkpoint` if it exists; its settings must match. Needs `checkpoint`. Without it, "
                "an existing `checkpoint` is refused rather than overwritten."),
    Setting("device", None, "Any", kind="optional", option=None, sweep=SINGLE, help="",
            doc="A device of the backend (with `net`: the net's device by default)."),
    Setting("compile_step", None, "bool | None", kind="bool or None", check=checks.compile_step,
            parse=on_off_auto, shown="auto", recorded=True, free=True,
            help="compile the training step: auto (on JAX), on (JAX, CuPy) or off",
            doc="Run the training step compiled: on JAX, blocks of up to a thousand steps as one ``jax.jit`` "
                "program (several times faster than one dispatch per operation; the first block waits for the "
                "compilation, under a second); on CuPy, with fused elementwise kernels, replayed from a CUDA "
                "graph where CuPy can capture one (see the backends page; off by default until measured on a "
                "GPU). The maths is the same code; the compiler may reorder floating-point operations, so "
                "losses agree with an eager run's to rounding, not bit for bit. None (the default) compiles "
                'where it is known to help, JAX, with ``gradient="backprop"``; True asks for it and is refused '
                "on other backends and with the numerical gradient; False never compiles."),
)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in TRAIN_SETTINGS}


def record() -> tuple[Setting, ...]:
    """The entries of :data:`TRAIN_SETTINGS`, read when called (a test may add one)."""
    return TRAIN_SETTINGS


def by_name(settings: Sequence[Setting] | None = None) -> dict[str, Setting]:
    """`settings` by name (the record's entries by default)."""
    return {s.name: s for s in (record() if settings is None else settings)}


RENAMED = {old: s.name for s in TRAIN_SETTINGS for old in s.old_names}
"""Old setting names and their current ones: still taken by ``train`` (with
a DeprecationWarning), and read in the ``config`` of checkpoints and
``history.json`` files written before a rename."""


def current_names(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (a stored run's settings) with every old name in :data:`RENAMED`
    replaced by the current one; a current name already there wins."""
    out = dict(config)
    for old, new in RENAMED.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def doc_entry(name: str, kind: str, text: str) -> list[str]:
    """A parameter as a numpydoc docstring lists it, indented as in a function's docstring."""
    return [f"    {name} : {kind}" if kind else f"    {name} :",
            *textwrap.wrap(text, width=79, initial_indent=" " * 8, subsequent_indent=" " * 8)]


def _literal(value: Any) -> str:
    return f'``"{value}"``' if isinstance(value, str) else f"``{value!r}``"


def _train_doc(s: Setting) -> list[str]:
    text = s.doc
    if s.default is not None:
        text += f" Default: {_literal(s.default)}" + (" for a new network." if s.net_own else ".")
    return doc_entry(s.name, s.doc_kind, text)


def _old_name_doc(old: str, s: Setting) -> list[str]:
    kind = s.doc_kind if s.doc_kind.endswith(", optional") else s.doc_kind + ", optional"
    return doc_entry(old, kind, f"Deprecated: the old name of `{s.name}` (it warns). {s.old_names[old]}".strip())


def describe(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (``train``) with the signature and the Parameters section of its docstring made
    from the record: each setting with its default (None for the net's own settings), then the
    old names of renamed settings, default None."""
    params = [inspect.Parameter(s.name, inspect.Parameter.POSITIONAL_OR_KEYWORD if s.positional
                                else inspect.Parameter.KEYWORD_ONLY, default=s.keyword_default,
                                annotation=f"{s.annotation} | None" if s.net_own else s.annotation)
              for s in record()]
    lines = [line for s in record() for line in _train_doc(s)]
    for s in record():
        for old in s.old_names:
            params.append(inspect.Parameter(old, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=f"{s.annotation} | None"))
            lines += _old_name_doc(old, s)
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    # still taken (and in the signature), left out of the one the API pages show
    function.__deprecated_parameters__ = tuple(old for s in record() for old in s.old_names)  # type: ignore[attr-defined]
    function.__doc__ = fill_parameters(function.__doc__ or "", lines)
    return function


def fill_parameters(doc: str, lines: list[str]) -> str:
    """`doc` with `lines` as its Parameters section, replacing what the section held."""
    head, mark, rest = doc.partition("    Parameters\n    ----------\n")
    if not mark:
        raise ValueError("the docstring has no Parameters section to fill")
    tail = rest[rest.index("\n\n") + 1:] if not rest.startswith("\n") else rest
    return head + mark + "\n".join(lines) + "\n" + tail
