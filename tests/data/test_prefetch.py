"""The prefetch map: input order, per-item errors with their types, a dead worker's item retried once
then WorkerDied, workers=0 == workers=2, the look-ahead bound, initializers, clean shutdown."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaspark_eval.data.prefetch import (InitializerError, Outcome, Prefetcher, RemoteError, WorkerDied,
                                         MAX_DEFAULT_WORKERS, default_workers)
from adaspark_eval.data.video import VideoError

sys.path.insert(0, str(Path(__file__).parent))  # the spawned workers inherit sys.path
import prefetch_work as work  # noqa: E402 - workers import its functions by module name


def run(function, items, workers=2, **options):
    """[(item, outcome)] and the stats, the prefetcher closed."""
    with Prefetcher(function, workers=workers, **options) as prefetcher:
        pairs = list(prefetcher.map(items))
    return pairs, prefetcher.stats


def summary(outcome: Outcome):
    """A comparable form: the value, or the error's type and message."""
    return ("ok", outcome.value) if outcome.ok else (type(outcome.error), str(outcome.error))


def test_input_order_with_varied_delays():
    items = [(n, (0.15, 0.0, 0.05, 0.1)[n % 4]) for n in range(10)]
    pairs, stats = run(work.square_after, items, ahead=4)
    assert [item for item, _ in pairs] == items
    assert [outcome.get() for _, outcome in pairs] == [n * n for n in range(10)]
    assert (stats.done, stats.retries, stats.deaths) == (10, 0, 0)
    assert 0 < stats.wait_s <= stats.wall_s and 0 < stats.wait_share <= 1


def test_errors_come_back_typed_per_item_and_equal_inline():
    items = list(range(9))
    pooled, _ = run(work.fail_some, items)
    inline, _ = run(work.fail_some, items, workers=0)
    assert [item for item, _ in pooled] == items
    by_item = dict(pooled)
    assert [n for n in items if by_item[n].ok] == [0, 2, 3, 6, 8]
    assert [by_item[n].value for n in (0, 2, 3, 6, 8)] == [0, 20, 30, 60, 80]
    for n in (1, 4):
        assert type(by_item[n].error) is VideoError
        assert str(by_item[n].error) == f"video {n}.mp4 does not decode: re-download it"
        assert "In prefetch worker" in by_item[n].error.__notes__[-1]  # the worker's traceback
    assert type(by_item[5].error) is ZeroDivisionError
    with pytest.raises(ZeroDivisionError):
        by_item[5].get()
    # an exception that cannot be rebuilt here comes back by type name and message
    assert type(by_item[7].error) is RemoteError
    assert by_item[7].error.type_name == "prefetch_work.Unportable"
    assert str(by_item[7].error) == "prefetch_work.Unportable: cannot read (/videos/7.mp4)"
    # inline: the same outcomes (the unportable one as itself, it never travels)
    assert [summary(o) for n, o in inline if n != 7] == [summary(o) for n, o in pooled if n != 7]
    assert str(dict(inline)[7].error) == "cannot read (/videos/7.mp4)"


def test_worker_killed_mid_item_is_retried(tmp_path):
    marker = str(tmp_path / "killed-once")
    items = [(n, marker if n == 2 else None) for n in range(6)]
    pairs, stats = run(work.die_once, items)
    assert Path(marker).exists()
    assert [outcome.get() for _, outcome in pairs] == list(range(6))
    assert (stats.done, stats.deaths, stats.retries) == (6, 1, 1)


def test_item_that_always_kills_its_worker_is_worker_died():
    items = [0, 1, "die", 3, 4, 5]
    pairs, stats = run(work.die_on, items)
    assert [item for item, _ in pairs] == items
    outcomes = dict(pairs)
    error = outcomes["die"].error
    assert type(error) is WorkerDied and error.exit_codes == (3, 3)
    assert str(error) == "worker died twice (exit code 3, then exit code 3) preparing this sample"
    assert [outcomes[n].get() for n in (0, 1, 3, 4, 5)] == [0, 1, 3, 4, 5]
    assert (stats.deaths, stats.retries) == (2, 1)


def test_worker_died_names_signals():
    assert str(WorkerDied((-9, 1))) == "worker died twice (signal SIGKILL, then exit code 1) preparing this sample"


def test_look_ahead_is_bounded():
    ahead, count = 3, 10
    pulled = []

    def source():
        for n in range(count):
            pulled.append(n)
            yield (n, 0.01)

    with Prefetcher(work.square_after, workers=2, ahead=ahead) as prefetcher:
        for handed, (item, outcome) in enumerate(prefetcher.map(source()), start=1):
            assert outcome.get() == item[0] ** 2
            # never more than `ahead` pulled beyond what the caller got; and the look-ahead is used
            assert len(pulled) == min(count, handed + ahead)


def test_initializer_runs_once_per_worker_and_inline():
    pooled, _ = run(work.add_offset, range(6), initializer=work.set_offset, initargs=(100,))
    assert [outcome.get()[0] for _, outcome in pooled] == list(range(100, 106))
    assert os.getpid() not in {outcome.get()[1] for _, outcome in pooled}
    inline, _ = run(work.add_offset, range(3), workers=0, initializer=work.set_offset, initargs=(7,))
    assert [outcome.get() for _, outcome in inline] == [(7, os.getpid()), (8, os.getpid()), (9, os.getpid())]


@pytest.mark.parametrize("workers", [0, 2])
def test_failing_initializer_raises_in_the_caller(workers):
    before = set(multiprocessing.active_children())  # other tests' processes are not this one's to judge
    with pytest.raises(InitializerError, match="FileNotFoundError: no processor at /models/none") as caught:
        run(work.add_offset, range(4), workers=workers, initializer=work.refuse)
    assert type(caught.value.__cause__) is FileNotFoundError
    assert not set(multiprocessing.active_children()) - before


def test_workers_get_one_thread_ignore_sigint_and_the_caller_keeps_its_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "16")
    pairs, _ = run(work.worker_settings, range(2))
    assert {outcome.get() for _, outcome in pairs} == {("1", "false", True)}
    assert os.environ["OMP_NUM_THREADS"] == "16"


def test_interrupt_and_abandoned_map_leave_no_workers():
    before = set(multiprocessing.active_children())  # other tests' processes are not this one's to judge
    with pytest.raises(KeyboardInterrupt):
        with Prefetcher(work.square_after, workers=2, ahead=4) as prefetcher:
            for item, _ in prefetcher.map([(n, 0.5) for n in range(8)]):
                processes = set(multiprocessing.active_children()) - before
                raise KeyboardInterrupt
    assert len(processes) == 2 and not any(process.is_alive() for process in processes)
    assert not set(multiprocessing.active_children()) - before
    with pytest.raises(RuntimeError, match="closed: make a new one"):
        prefetcher.map([])


def test_abandoned_map_then_a_new_one():
    with Prefetcher(work.square_after, workers=2, ahead=2) as prefetcher:
        for _ in prefetcher.map([(n, 0.3) for n in range(6)]):
            break
        assert [o.get() for _, o in prefetcher.map([(n, 0.0) for n in range(4)])] == [0, 1, 4, 9]


def test_validation_and_default_workers():
    for options, fix in [({"workers": -1}, "use 0"), ({"workers": 2, "ahead": 0}, "use 1 or more"),
                         ({"workers": 1, "threads": 0}, "use 1 or more")]:
        with pytest.raises(ValueError, match=fix):
            Prefetcher(work.add_offset, **options)
    assert 0 <= default_workers() <= MAX_DEFAULT_WORKERS == 4
    assert default_workers() == max(0, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)) - 1))


CALLER = """
import os, signal, sys
sys.path.insert(0, {folder!r})
import prefetch_work
from adaspark_eval.data.prefetch import Prefetcher
if __name__ == "__main__":
    prefetcher = Prefetcher(prefetch_work.square_after, workers=2, ahead=4).start()
    outcomes = prefetcher.map([(n, 0.5) for n in range(8)])
    next(outcomes)
    print(*[child.pid for child in __import__("multiprocessing").active_children()], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def ended(pid: int) -> bool:
    """No such process, or a zombie waiting for its new parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_workers_exit_when_their_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(CALLER.format(folder=str(Path(__file__).parent)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == -9, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while not all(map(ended, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(ended, pids))


def test_the_caller_prepares_what_no_started_worker_has_taken():
    """Workers whose initializer takes 2 s and a caller that spends 0.6 s on each item (the model): the caller
    prepares the first items itself (the workers' values), then the started workers take the rest;
    ``wait_started`` blocks until all are ready."""
    items = list(range(8))
    with Prefetcher(work.add_offset, workers=2, initializer=work.slow_offset, initargs=(100, 2.0)) as prefetcher:
        prefetcher.help(work.set_offset, (100,))
        started = time.monotonic()
        values = []
        for _, outcome in prefetcher.map(items):
            values.append(outcome.get())
            if len(values) == 1:
                first_s = time.monotonic() - started
            time.sleep(0.6)
    assert values[0] == (100, os.getpid()) and first_s < 1.5  # not waiting for the workers' start
    assert [value for value, _ in values] == [100 + n for n in items]
    assert 1 <= prefetcher.stats.helped < len(items) and prefetcher.stats.done == len(items)
    assert values[-1][1] != os.getpid()  # the workers took items once started
    with Prefetcher(work.add_offset, workers=1, initializer=work.slow_offset, initargs=(7, 0.5)) as prefetcher:
        prefetcher.help().wait_started(60)
        pairs = list(prefetcher.map([1, 2]))
    assert [o.get()[0] for _, o in pairs] == [8, 9] and prefetcher.stats.helped == 0
