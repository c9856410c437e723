"""Ctrl-C and SIGTERM as requests to stop; runs in other threads stopped on request."""

from __future__ import annotations

import os
import signal
import threading

from xgrad._infra.signals import stop_signals, stop_threads


def _in_a_thread(started, asked, seen):
    with stop_signals() as stop:
        started.set()
        asked.wait(60)
        seen.append(stop.signal)


def test_stop_threads_asks_the_runs_of_other_threads_and_not_the_main_one():
    started, asked, seen = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=_in_a_thread, args=(started, asked, seen))
    thread.start()
    assert started.wait(60)
    with stop_signals() as main:
        assert stop_threads("SIGINT") == 1
        assert not main
    asked.set()
    thread.join(60)
    assert seen == ["SIGINT"]
    assert stop_threads() == 0  # the thread's run is over: nothing left to ask


def test_a_signal_does_not_reach_the_runs_of_other_threads():
    started, asked, seen = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=_in_a_thread, args=(started, asked, seen))
    thread.start()
    assert started.wait(60)
    with stop_signals() as main:
        os.kill(os.getpid(), signal.SIGTERM)
        assert main.signal == "SIGTERM"
    asked.set()
    thread.join(60)
    assert seen == [None]
