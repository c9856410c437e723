"""What the workers of a sweep's local cluster run as they start and close: Ctrl-C
and SIGTERM are left to the sweep, and a run still in progress as a worker closes
stops at its next step, without a word."""

from __future__ import annotations

import logging
import signal
import threading
import time

import pytest
from _helpers import tiny_data

import xgrad
from xgrad._infra import signals
from xgrad._sweep.preload import dask_setup, dask_teardown, drop_cancelled_on_close, stop_dropped_runs


@pytest.fixture
def restored():
    """The signal handlers, the filters of Dask's logger and the level of xgrad's, as they were."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    dask_logger = logging.getLogger("distributed.worker.state_machine")
    levels = {name: logging.getLogger(name).level for name in ("xgrad", "distributed")}
    filters = list(dask_logger.filters)
    yield
    for s, h in handlers.items():
        signal.signal(s, h)
    dask_logger.filters[:] = filters
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_worker_leaves_ctrl_c_and_sigterm_to_the_sweep(restored):
    dask_setup(None)
    assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert drop_cancelled_on_close in logging.getLogger("distributed.worker.state_machine").filters


def test_only_the_warning_of_a_worker_closed_mid_run_is_dropped():
    def record(text):
        return logging.LogRecord("distributed.worker.state_machine", logging.WARNING, "", 0, text, (), None)

    assert not drop_cancelled_on_close(record("Async instruction for <Task cancelled name=\"execute('run_one-1')\" "
                                              "coro=<Worker.execute() done>> ended with CancelledError"))
    assert drop_cancelled_on_close(record("Compute Failed\nKey: run_one-1"))


def _train_in_a_thread():
    """A long run in another thread, as a Dask worker runs it; (thread, results) once it has started."""
    results = []
    thread = threading.Thread(target=lambda: results.append(xgrad.train(
        "numpy", data=tiny_data(), iters=10**7, batch_size=5, hidden_size=3, progress=False)))
    thread.start()
    deadline = time.monotonic() + 60
    while not signals._in_threads:
        assert thread.is_alive() and time.monotonic() < deadline, "the run did not start"
        time.sleep(0.001)
    return thread, results


@pytest.mark.parametrize("stop", [dask_teardown, lambda worker: stop_dropped_runs()])
def test_a_run_in_progress_as_the_worker_closes_stops_at_its_next_step(restored, caplog, stop):
    thread, results = _train_in_a_thread()
    stop(None)
    thread.join(timeout=60)
    assert not thread.is_alive()
    (result,) = results
    assert result.interrupted and result.stop_signal == "SIGTERM"
    assert len(result.history.loss) < 10**7
    assert "interrupted" not in caplog.text  # nothing on the worker's stderr
    assert logging.getLogger("distributed").level == logging.CRITICAL  # nor as it closes
    assert stop_dropped_runs() == 0  # none left


def test_a_worker_counts_its_tasks_in_progress_until_none_is_left(restored):
    from types import SimpleNamespace

    worker = SimpleNamespace(state=SimpleNamespace(executing={"run_one-1", "run_one-2"}))
    assert stop_dropped_runs(worker) == 2  # also a task still loading its data, not yet in a run
    worker.state.executing.clear()
    assert stop_dropped_runs(worker) == 0
