"""What a training run returns: :class:`TrainResult`, its dict and its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xgrad._net.net import TwoLayerNet
from xgrad._train.history import History

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    net : TwoLayerNet
        The trained network (its parameters on the training device).
    history : History
        What the run recorded; the attributes below read it.
    loss : numpy.ndarray
        The minibatch training loss of every iteration done.
    eval_iters, train_acc, test_acc : list
        Iterations done at each evaluation, and the train and test accuracy
        then (one evaluation per epoch, and one at the end).
    iters_per_epoch : int
    timings : dict
        Seconds spent in total, training and evaluating, and iterations per
        second of the training steps.
    backend, device, dtype : str
    config : dict
        The settings of the run.
    interrupted : bool
        True when the run was stopped early (Ctrl-C, SIGTERM); the result
        holds what was done until then.
    stop_signal : str or None
        ``"SIGINT"`` or ``"SIGTERM"`` when a signal stopped the run.
    """

    net: TwoLayerNet
    history: History
    timings: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stop_signal: str | None = None

    @property
    def loss(self) -> Any:
        """The minibatch loss of every iteration, as a NumPy array."""
        import numpy as np

        return np.asarray(self.history.loss, dtype=np.float64)

    eval_iters = property(lambda self: self.history.eval_iters, doc="Iterations done at each evaluation.")
    train_acc = property(lambda self: self.history.train_acc, doc="Training accuracy at each evaluation.")
    test_acc = property(lambda self: self.history.test_acc, doc="Test accuracy at each evaluation.")
    iters_per_epoch = property(lambda self: self.history.iters_per_epoch, doc="Iterations in one epoch.")
    backend = property(lambda self: self.history.backend, doc="The backend's name.")
    device = property(lambda self: self.history.device, doc="The device's name.")
    dtype = property(lambda self: self.history.dtype, doc="The parameters' dtype.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything but the network: the history's
        fields, then the timings, the settings and how the run ended."""
        return {**self.history.to_dict(), "timings": dict(self.timings), "config": dict(self.config),
                "interrupted": self.interrupted, "stop_signal": self.stop_signal}

    def summary(self) -> str:
        """A few lines for people: accuracy, time, where it ran."""
        done = len(self.loss)
        acc = (f"train accuracy {self.train_acc[-1]:.4f}, test accuracy {self.test_acc[-1]:.4f}"
               if self.test_acc else "no evaluation")
        if self.eval_iters and self.eval_iters[-1] != done:
            acc += f" (measured at iteration {self.eval_iters[-1]})"
        stopped = f" by {self.stop_signal}" if self.stop_signal else ""
        state = f" (interrupted{stopped})" if self.interrupted else ""
        t = self.timings
        return (f"{done} iterations{state} on {self.backend} ({self.device}, {self.dtype}): {acc}; "
                f"{t.get('total_s', 0.0):.1f} s in total: {t.get('train_s', 0.0):.1f} s training at "
                f"{t.get('iters_per_s', 0.0):.0f} it/s, {t.get('eval_s', 0.0):.1f} s evaluating")
