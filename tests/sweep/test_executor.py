"""Where the runs go: a real Dask cluster started with Dask's own command line,
a worker killed there with SIGKILL, and a sweep on Dask stopped by SIGTERM or
Ctrl-C, each as a user would see it (the ``xgrad sweep`` command)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xgrad
from xgrad._infra.signals import StopRequest, Terminated
from xgrad._sweep.executor import PRELOAD, stopped

distributed = pytest.importorskip("distributed")

ROOT = Path(xgrad.__file__).resolve().parent.parent
LRS = ["0.03", "0.1", "0.3", "1"]
RUN = ["--iters", "400", "--eval-every", "200", "--no-progress"]  # a run of a second or so
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WAIT = 90  # seconds for anything to happen on a loaded machine


def _stopped_line(name: str) -> str:
    """The one line `xgrad sweep` writes on stderr when `name` stops it on Dask."""
    return f"xgrad sweep: stopped by {name}: the runs in progress are dropped, never stored as finished; the " \
           "same sweep with the same `--out` reads the finished runs back and does the others\n"


def _sweep(out: Path, *args: str, stderr: Path, wrapper: list[str] | None = None) -> subprocess.Popen:
    """``xgrad sweep`` over `LRS`, writing to `out`, in a session of its own (so that its whole
    process group, workers included, can be signalled as a terminal does); stderr to a file."""
    command = [*(wrapper or [sys.executable, "-m", "xgrad"]), "sweep", "--lr", *LRS, *RUN, "--out", str(out), *args]
    with open(stderr, "wb") as err:
        return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def _finished(out: Path) -> set[str]:
    return {p.parent.name for p in out.glob("runs/*/history.json")}


def _wait_for_a_run(proc: subprocess.Popen, out: Path, log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not _finished(out):
        assert proc.poll() is None, f"the sweep ended (rc {proc.returncode}) before any run:\n{log.read_text()}"
        assert time.monotonic() < deadline, "no run finished in time:\n" + log.read_text()
        time.sleep(0.01)


def _end(proc: subprocess.Popen) -> None:
    """Kill what is left of the process group of `proc` (a finalizer: the test may have failed)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _assert_runs_equal_serial_training(out: Path) -> None:
    """Every run under `out` holds the numbers of xgrad.train with its settings, in this process."""
    for path in sorted(out.glob("runs/*/history.json")):
        stored = json.loads(path.read_text())
        settings = stored["sweep_run"]["settings"]
        expected = xgrad.train("numpy", **settings, progress=False).history
        np.testing.assert_array_equal(stored["loss"], expected.loss, err_msg=str(settings))
        assert (stored["train_acc"], stored["val_acc"], stored["test_acc"]) == (
            expected.train_acc, expected.val_acc, expected.test_acc), settings


# -- a real cluster: `dask scheduler` and `dask worker` ------------------------------------
class _Cluster:
    def __init__(self, address: str, workers: list[subprocess.Popen], client) -> None:
        self.address, self.workers, self.client = address, workers, client


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler on a free port (``--port 0``: the system picks it; the address is read
    from ``--scheduler-file``) and two workers of one thread each, started with Dask's own
    command line from this Python; every process group is killed at the end, pass or fail
    (the exit stack runs whatever was started, also when the start itself fails)."""
    with contextlib.ExitStack() as stack:
        def start(name: str, *args: str) -> subprocess.Popen:
            with open(tmp_path / f"{name}.log", "wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "dask", *args], env=ENV, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            stack.callback(_end, proc)
            return proc

        file = tmp_path / "scheduler.json"
        scheduler = start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                          "--scheduler-file", str(file))
        deadline = time.monotonic() + WAIT
        while not file.exists():
            log = (tmp_path / "scheduler.log").read_text()
            assert scheduler.poll() is None, log
            assert time.monotonic() < deadline, "the scheduler did not start:\n" + log
            time.sleep(0.05)
        time.sleep(0.1)  # written whole
        address = json.loads(file.read_text())["address"]
        workers = [start(f"worker{i}", "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                         "--host", "127.0.0.1", "--name", f"worker{i}") for i in range(2)]
        client = stack.enter_context(distributed.Client(address))  # closed before the processes end
        client.wait_for_workers(2, timeout=WAIT)
        yield _Cluster(address, workers, client)


@pytest.mark.slow
def test_a_worker_killed_on_a_real_cluster_loses_no_run(dask_cluster, tmp_path):
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    proc = _sweep(out, "--scheduler", dask_cluster.address, stderr=log)
    try:
        _wait_for_a_run(proc, out, log)
        groups = dask_cluster.client.run(os.getpgid, 0)  # worker address -> the `dask worker` it belongs to
        busy = [w for w, tasks in dask_cluster.client.processing().items() if tasks]
        assert busy, "no worker was running a run"
        victim = next(p for p in dask_cluster.workers if p.pid == groups[busy[0]])
        os.killpg(victim.pid, signal.SIGKILL)  # the worker and its nanny: a machine lost
        finished_before = _finished(out)
        assert proc.wait(timeout=WAIT * 2) == 0, log.read_text()
    finally:
        _end(proc)
    assert victim.wait(timeout=WAIT) == -signal.SIGKILL
    assert len(finished_before) < len(LRS), "the sweep had ended before the worker was killed"
    assert len(_finished(out)) == len(LRS), log.read_text()
    assert len(json.loads((out / "sweep.json").read_text())["runs"]) == len(LRS)
    _assert_runs_equal_serial_training(out)


@pytest.mark.slow
def test_sigterm_stops_a_sweep_on_a_real_cluster_in_one_line(dask_cluster, tmp_path):
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    proc = _sweep(out, "--scheduler", dask_cluster.address, stderr=log)
    try:
        _wait_for_a_run(proc, out, log)
        proc.send_signal(signal.SIGTERM)  # `kill PID`
        assert proc.wait(timeout=WAIT) == 143
    finally:
        _end(proc)
    assert log.read_text() == _stopped_line("SIGTERM")
    finished = _finished(out)
    assert 1 <= len(finished) < len(LRS)
    assert all(p.poll() is None for p in dask_cluster.workers)  # the cluster is not the sweep's to stop
    _assert_runs_equal_serial_training(out)


def test_the_cluster_recipes_use_options_that_dask_has():
    """docs/cluster.rst's ``dask scheduler`` and ``dask worker`` commands, those the fixture above runs,
    name options that Dask's command line of this environment has."""
    page = (ROOT / "docs" / "cluster.rst").read_text()
    commands = re.findall(r"\$ .*?\bdask (scheduler|worker)\b([^&\n]*)", page)
    assert sorted(c for c, _ in commands) == ["scheduler", "scheduler", "worker", "worker"], commands
    for command, args in commands:
        known = subprocess.run([sys.executable, "-m", "dask", command, "--help"], env=ENV, capture_output=True,
                               text=True, timeout=WAIT, check=True).stdout
        for option in re.findall(r"(?<!\S)--[\w-]+", args):
            assert re.search(rf"(?<![\w-]){option}\b", known), f"`dask {command}` has no {option}"


# -- a local cluster, stopped --------------------------------------------------------------
def _two_cores() -> list[str]:
    """A command that runs ``xgrad`` on two cores, so that its local cluster has two workers."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity here to give the local cluster two workers")
    cores = sorted(os.sched_getaffinity(0))[:2]
    return [sys.executable, "-c", f"import os, runpy; os.sched_setaffinity(0, {cores}); "
            "runpy.run_module('xgrad', run_name='__main__', alter_sys=True)"]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status", "to_the_group"), [
    (signal.SIGTERM, 143, False),  # `kill PID`
    (signal.SIGTERM, 143, True),  # a job scheduler ending the job: every process
    (signal.SIGINT, 130, True),  # Ctrl-C in a terminal: every process of the command
])
def test_a_signal_stops_a_sweep_on_a_local_cluster_in_one_line(tmp_path, sig, status, to_the_group):
    out, log = tmp_path / "out", tmp_path / "sweep.log"
    proc = _sweep(out, stderr=log, wrapper=_two_cores())
    try:
        _wait_for_a_run(proc, out, log)
        if to_the_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        assert proc.wait(timeout=WAIT) == status, log.read_text()
        time.sleep(0.5)  # anything the workers or the resource tracker would still say
    finally:
        _end(proc)
    err = log.read_text()
    assert err == _stopped_line(signal.Signals(sig).name), err  # no traceback, CancelledError or leaked semaphore
    finished = _finished(out)
    assert 1 <= len(finished) < len(LRS), finished

    again = subprocess.run([sys.executable, "-m", "xgrad", "sweep", "--lr", *LRS, *RUN, "--out", str(out),
                            "--scheduler", "serial"], env=ENV, capture_output=True, text=True, timeout=WAIT * 2)
    assert again.returncode == 0, again.stderr
    assert f"xgrad: {len(finished)} of {len(LRS)} runs read back from {out}\n" in again.stderr
    assert len(_finished(out)) == len(LRS)


# -- the pieces ----------------------------------------------------------------------------
def test_the_stop_on_a_cluster_speaks_of_every_run_in_progress():
    request = StopRequest()
    request.signal = "SIGTERM"
    assert isinstance(stopped(request, many=True), Terminated)
    assert str(stopped(request, many=True)).startswith("the runs in progress are dropped, never stored")
    request.signal = "SIGINT"
    assert type(stopped(request)) is KeyboardInterrupt
    assert str(stopped(request)).startswith("the run in progress is dropped, never stored")


def test_the_local_cluster_workers_run_the_preload():
    from xgrad._sweep.executor import local_cluster

    with local_cluster(distributed, n_workers=1) as cluster, distributed.Client(cluster) as c:
        ignored = c.run(lambda: [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)])
    assert list(ignored.values()) == [[True, True]]
    assert PRELOAD == "xgrad._sweep.preload"


def test_ci_runs_the_slow_tests_of_a_real_cluster():
    """CI runs nox, whose test sessions select no marks: the tests above marked slow run there."""
    for path in ("noxfile.py", "pyproject.toml", ".ci/run"):
        text = (ROOT / path).read_text()
        assert "not slow" not in text and '"-m", "slow"' not in text and " -m slow" not in text, path
    assert 'dependency_groups(PYPROJECT, "test")' in (ROOT / "noxfile.py").read_text()
    assert '"dask[distributed]' in (ROOT / "pyproject.toml").read_text()  # in the test group: `python -m dask`
