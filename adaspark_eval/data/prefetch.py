"""Samples prepared ahead in worker processes: an ordered, bounded look-ahead map.

The evaluation is decode-bound at scale: each sample's video is decoded, resized and run through the HF
processor on one CPU thread while the GPU waits. A :class:`Prefetcher` runs ``function(item)`` for the
NEXT items in a pool of worker processes while the caller works on the current one::

    with Prefetcher(prepare, workers=default_workers(), ahead=8,
                    initializer=load_processor, initargs=(model_path,)) as prefetcher:
        for item, outcome in prefetcher.map(items):     # input order, whatever the workers' timing
            if not outcome.ok:                          # e.g. a VideoError, or WorkerDied
                record_error(item, outcome.error)
                continue
            run_model(outcome.value)
    print(prefetcher.stats)                             # done, wait_s (caller starved), retries, deaths

Contract:
    - ``function`` (and ``initializer``) must be picklable top-level callables: workers start with the
      ``spawn`` method (never ``fork``: a forked pool decoding video after torch was imported hung on
      the GPU machine), so they import them by module name. For the same reason the caller's main
      module must guard its entry point with ``if __name__ == "__main__":``.
    - Outcomes come in INPUT ORDER and do not depend on ``workers``: ``workers=0`` runs ``function``
      inline in the caller, one item at a time, with the same outcomes.
    - An ``Exception`` raised by ``function`` comes back as that item's failed :class:`Outcome`, its
      type and message preserved (the worker's traceback is attached as a note). One that cannot
      travel between processes (it does not pickle, or its class cannot be rebuilt from its ``args``)
      comes back as a :class:`RemoteError` naming the original type and message.
    - Bounded memory: at most ``ahead`` items are pulled from ``items`` and not yet handed to the
      caller (queued, in a worker, or finished and waiting); ``items`` is consumed lazily.
    - The caller never waits for an item that no worker has taken: with :meth:`Prefetcher.help` it
      prepares that item itself (the same ``function``, after its own initializer), so the first items
      are out while the workers still import and initialise (seconds to tens of seconds for torch,
      transformers and a processor); workers take items only once initialised.
    - Each worker holds one item at a time (its own pipe), so a worker that dies (a decoder segfault,
      the OOM killer, ``os._exit``) is attributable to exactly one item: a fresh worker replaces it and
      the item is tried once more; if that worker dies too, the item's outcome is :class:`WorkerDied`
      and the run goes on. A dead worker never blocks the caller.
    - Workers ignore SIGINT once started (the caller handles Ctrl-C); :meth:`Prefetcher.close` (or
      leaving the ``with`` block, also on KeyboardInterrupt) terminates them; they are daemonic, so
      the interpreter's exit terminates them too (and ``function`` may not start processes of its
      own), and a worker whose caller vanished exits when its pipe closes.
    - Each worker uses ``threads`` CPU threads (default 1): OMP/MKL/OpenBLAS/numexpr/Rayon variables
      are set in its environment whatever the caller's say, and ``torch.set_num_threads`` /
      ``cv2.setNumThreads`` are applied once those libraries are loaded there; ``N`` workers thus take
      about ``N`` cores, which :func:`default_workers` leaves one short of the machine's.
    - Items and values travel pickled through pipes: keep items small (ids, paths, settings); values
      may be large (torch tensors travel through shared memory, numpy arrays are copied).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.reduction import ForkingPickler
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")

#: Times one item is tried when its worker dies: the first try and one retry.
ATTEMPTS = 2
#: Environment variables that bound a library's thread pool, set to ``threads`` in each worker.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS")
#: Seconds ``close`` waits for an idle worker to exit by itself before terminating it.
_EXIT_GRACE_S = 2.0
_ENVIRONMENT_LOCK = threading.Lock()


#: The most workers ``default_workers`` gives: on an H200 with 16 cores, 3-4 workers prepared 32-frame samples of
#: 720p video faster than the model answered them, and 12 starting at once slowed each other's imports and
#: the first sample by tens of seconds (benchmarks/EVAL_THROUGHPUT.md).
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Workers for this machine: one fewer than the CPUs this process may use (the caller keeps one),
    at most ``MAX_DEFAULT_WORKERS``; 0 (inline) on a single CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_DEFAULT_WORKERS, cpus - 1))


class WorkerDied(RuntimeError):
    """The worker preparing an item died twice (a crash, a kill), so the item has no value.

    Attributes:
        exit_codes: the dead workers' exit codes, negative for a signal (``-9``: SIGKILL).
    """

    def __init__(self, exit_codes: tuple[int | None, ...]) -> None:
        self.exit_codes = tuple(exit_codes)
        super().__init__(f"worker died {_times(len(self.exit_codes))} "
                         f"({', then '.join(map(_describe_exit, self.exit_codes))}) preparing this sample")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.exit_codes,)


class RemoteError(RuntimeError):
    """An exception from a worker that could not travel back as itself; ``type_name`` and the message
    are the original's (``str`` reads ``module.Type: message``)."""

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name, self.message = type_name, message
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.type_name, self.message)


class InitializerError(RuntimeError):
    """The ``initializer`` raised (in a worker, or inline with ``workers=0``); ``__cause__`` is its
    exception. Raised in the caller: no item can be prepared, so the run cannot go on."""


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What ``function(item)`` gave: its ``value``, or the ``error`` it raised (``WorkerDied`` when its
    worker died twice)."""

    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def get(self) -> T:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


@dataclass
class PrefetchStats:
    """Counters over every ``map`` of one prefetcher.

    Attributes:
        done: outcomes handed to the caller (failed ones included).
        wait_s: seconds the caller spent inside ``map``'s ``next()``, waiting for the next outcome.
        wall_s: seconds from each ``map``'s first ``next()`` to its end (summed).
        retries: items tried again after their worker died.
        deaths: workers that died (crashed or were killed) while alive to this prefetcher.
        helped: items the caller prepared itself (``Prefetcher.help``) because no worker had taken them.
    """

    done: int = 0
    wait_s: float = 0.0
    wall_s: float = 0.0
    retries: int = 0
    deaths: int = 0
    helped: int = 0

    @property
    def wait_share(self) -> float:
        """The share of wall time the caller waited for data (0 when nothing ran yet)."""
        return self.wait_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    index: int | None = None  # the item it holds
    ready: bool = False  # its initializer finished: it takes items


class Prefetcher(Generic[Item, T]):
    """Runs ``function`` over items in ``workers`` spawned processes, up to ``ahead`` items ahead of the
    caller; see the module docstring for the contract.

    Args:
        function: picklable top-level callable, ``function(item) -> value``.
        workers: worker processes; 0 runs ``function`` inline in the caller.
        ahead: most items pulled and not yet handed out; default ``2 * workers`` (1 when inline).
            More than ``workers`` lets finished values queue while the caller is slow.
        initializer: picklable top-level callable run once per worker as ``initializer(*initargs)``
            before its first item (e.g. to build the HF processor into a module-level slot); with
            ``workers=0`` it runs once in the caller, before the first item.
        threads: CPU threads per worker (module docstring).
    """

    def __init__(self, function: Callable[[Item], T], workers: int, ahead: int | None = None,
                 initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
                 threads: int = 1) -> None:
        if workers < 0:
            raise ValueError(f"workers={workers}: use 0 (inline) or more")
        ahead = max(1, 2 * workers) if ahead is None else ahead
        if ahead < 1:
            raise ValueError(f"ahead={ahead}: use 1 or more (at least `workers` to keep every worker busy)")
        if threads < 1:
            raise ValueError(f"threads={threads}: use 1 or more")
        self.function, self.workers, self.ahead = function, workers, ahead
        self.initializer, self.initargs, self.threads = initializer, tuple(initargs), threads
        self.stats = PrefetchStats()
        self._pool: list[_Worker] = []
        self._initialized = False  # inline mode: the initializer ran
        self._helper: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self._helper_ready = False
        self._start_deaths = 0  # workers that died before their initializer finished
        self._mapping = False
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Prefetcher[Item, T]:
        """Start the workers now (``map`` does it otherwise), e.g. so that they import and initialise
        while the model loads. Returns self."""
        self._check_open()
        while len(self._pool) < self.workers:
            self._pool.append(self._spawn())
        return self

    def help(self, initializer: Callable[..., Any] | None = None,
             initargs: tuple[Any, ...] = ()) -> Prefetcher[Item, T]:
        """Let the caller prepare, with ``function`` in its own process, each item it needs that no worker has
        taken yet (all are still starting, or busy with later items), after running ``initializer(*initargs)``
        once there (default: the workers' own); outcomes are the same whoever prepares an item. Returns self."""
        self._helper = (initializer or self.initializer or (lambda: None),
                        tuple(initargs) if initializer is not None else self.initargs)
        return self

    def wait_started(self, timeout: float | None = None) -> Prefetcher[Item, T]:
        """Start the workers and block until every one has run its initializer (so that the caller helps with
        nothing: tests of the workers themselves). Raises ``InitializerError`` as ``map`` would, and
        ``TimeoutError`` after ``timeout`` seconds. Returns self."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while starting := [worker for worker in self._pool if not worker.ready]:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            signalled = set(wait([w.conn for w in starting] + [w.process.sentinel for w in starting], timeout=left))
            if not signalled:
                raise TimeoutError(f"prefetch workers still starting after {timeout} s")
            for worker in starting:
                if worker.conn in signalled or worker.process.sentinel in signalled:
                    self._started(worker, signalled)
        return self

    def close(self) -> None:
        """Stop the workers: idle ones are asked to exit, busy ones terminated, stragglers killed.
        Idempotent; the prefetcher cannot map afterwards."""
        self._closed = True
        pool, self._pool = self._pool, []
        for worker in pool:
            if worker.index is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            else:
                worker.process.terminate()
        deadline = time.monotonic() + _EXIT_GRACE_S
        for worker in pool:
            _stop(worker, max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Prefetcher[Item, T]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mapping ---------------------------------------------------------------------------------------

    def map(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome[T]]]:
        """``(item, Outcome)`` for each of ``items``, in input order. One ``map`` at a time per
        prefetcher; abandoning it early terminates the workers busy on its items (fresh ones replace
        them on the next ``map``). Closing the prefetcher mid-map makes the map raise RuntimeError."""
        self._check_open()
        if self._mapping:
            raise RuntimeError("this Prefetcher is already mapping: finish or close the other map first")
        return self._timed(self._map_inline(items) if self.workers == 0 else self._map_pool(items))

    def _timed(self, outcomes: Iterator[tuple[Item, Outcome[T]]]) -> Iterator[tuple[Item, Outcome[T]]]:
        """Counts time spent in ``next()`` (``wait_s``) and the map's span (``wall_s``)."""
        self._mapping = True
        began = resumed = time.monotonic()
        try:
            for pair in outcomes:
                self.stats.wait_s += time.monotonic() - resumed
                self.stats.done += 1
                yield pair
                resumed = time.monotonic()
            self.stats.wait_s += time.monotonic() - resumed
        finally:
            outcomes.close()  # type: ignore[attr-defined]
            self.stats.wall_s += time.monotonic() - began
            self._mapping = False

    def _map_inline(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome[T]]]:
        for item in items:
            if not self._initialized and self.initializer is not None:
                try:
                    self.initializer(*self.initargs)
                except Exception as error:
                    raise InitializerError(f"the prefetch initializer failed: {_name(error)}") from error
            self._initialized = True
            try:
                outcome: Outcome[T] = Outcome(value=self.function(item))
            except Exception as error:
                outcome = Outcome(error=error)
            yield item, outcome

    def _map_pool(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome[T]]]:
        self.start()
        source = iter(items)
        held: dict[int, Item] = {}  # pulled, not yet handed out
        ready: dict[int, Outcome[T]] = {}
        queue: deque[int] = deque()  # waiting for a worker; retries go first
        deaths: dict[int, list[int | None]] = {}
        pulled = handed = 0
        exhausted = False

        def fill() -> None:
            nonlocal pulled, exhausted
            self._check_open()
            while not exhausted and pulled - handed < self.ahead:
                try:
                    held[pulled] = next(source)
                except StopIteration:
                    exhausted = True
                    break
                queue.append(pulled)
                pulled += 1
            self._dispatch(queue, held, ready)

        try:
            while True:
                fill()
                if handed in ready:
                    outcome = ready.pop(handed)
                    item = held.pop(handed)
                    handed += 1
                    fill()  # the look-ahead refills before the caller takes its turn
                    yield item, outcome
                elif exhausted and handed == pulled:
                    return
                elif self._helper is not None and handed in queue:  # no worker has it: prepare it here
                    queue.remove(handed)
                    ready[handed] = self._help(held[handed])
                else:
                    self._collect(ready, queue, deaths)
        finally:
            self._abandon()

    def _help(self, item: Item) -> Outcome[T]:
        """``function(item)`` in the caller (``help``), its initializer run first, once."""
        assert self._helper is not None
        if not self._helper_ready:
            initializer, initargs = self._helper
            try:
                initializer(*initargs)
            except Exception as error:
                raise InitializerError(f"the prefetch initializer failed in the caller: {_name(error)}") from error
            self._helper_ready = True
        self.stats.helped += 1
        try:
            return Outcome(value=self.function(item))
        except Exception as error:
            return Outcome(error=error)

    def _dispatch(self, queue: deque[int], held: dict[int, Item], ready: dict[int, Outcome[T]]) -> None:
        """Give queued items to idle, initialised workers, one each (starting workers are checked first,
        without blocking)."""
        starting = [worker for worker in self._pool if not worker.ready]
        if starting:
            signalled = set(wait([w.conn for w in starting] + [w.process.sentinel for w in starting], timeout=0))
            for worker in starting:
                if worker.conn in signalled or worker.process.sentinel in signalled:
                    self._started(worker, signalled)
        idle = deque(slot for slot, worker in enumerate(self._pool) if worker.index is None and worker.ready)
        while queue and idle:
            index = queue.popleft()
            try:
                blob = bytes(ForkingPickler.dumps(held[index]))
            except Exception as error:  # the item itself cannot travel: its own failure
                ready[index] = Outcome(error=error)
                continue
            slot = idle.popleft()
            worker = self._pool[slot]
            if not worker.process.is_alive():  # ended while idle: nothing to blame it on
                if worker.conn.poll():
                    self._check_initialized(_receive(worker.conn))
                self.stats.deaths += 1
                _stop(worker, 0.0)
                worker = self._pool[slot] = self._spawn()
            try:
                worker.conn.send((index, blob))
            except OSError:
                pass  # it died just now: `_collect` sees its sentinel and retries the item
            worker.index = index

    def _collect(self, ready: dict[int, Outcome[T]], queue: deque[int],
                 deaths: dict[int, list[int | None]]) -> None:
        """Block until a busy worker replies or dies, or a starting one finishes its initializer or dies; file
        the outcome, or replace the worker (retrying its item)."""
        busy = [worker for worker in self._pool if worker.index is not None]
        starting = [worker for worker in self._pool if not worker.ready]
        if not busy and not starting:
            raise RuntimeError("prefetch: waiting with no item in a worker (internal error)")
        watched = busy + starting
        signalled = set(wait([worker.conn for worker in watched] + [worker.process.sentinel for worker in watched]))
        for worker in starting:
            if worker.conn in signalled or worker.process.sentinel in signalled:
                self._started(worker, signalled)
        for worker in busy:
            if worker.conn not in signalled and worker.process.sentinel not in signalled:
                continue
            index = worker.index
            assert index is not None
            ended = False
            try:
                reply = worker.conn.recv() if worker.conn.poll() else None
            except (EOFError, OSError):  # the pipe closed under a dying worker
                reply, ended = None, True
            except Exception as error:  # a value that did not unpickle here; the worker is fine
                worker.index = None
                ready[index] = Outcome(error=error)
                continue
            self._check_initialized(reply)
            if reply is not None:
                replied_index, succeeded, payload = reply
                assert replied_index == index, (replied_index, index)
                worker.index = None
                ready[index] = Outcome(value=payload) if succeeded else Outcome(error=payload)
                continue
            if not ended and worker.process.sentinel not in signalled:
                continue  # readable but nothing there yet (spurious wake-up)
            exit_code = _stop(worker, _EXIT_GRACE_S)
            self.stats.deaths += 1
            self._pool[self._pool.index(worker)] = self._spawn()
            codes = deaths.setdefault(index, [])
            codes.append(exit_code)
            if len(codes) >= ATTEMPTS:
                ready[index] = Outcome(error=WorkerDied(tuple(codes)))
            else:
                self.stats.retries += 1
                queue.appendleft(index)

    def _started(self, worker: _Worker, signalled: set[Any]) -> None:
        """A starting worker signalled: it is ready, its initializer failed (raise), or it died (replace it;
        ``ATTEMPTS`` deaths per worker slot before any is ready stop the run)."""
        try:
            reply = worker.conn.recv() if worker.conn.poll() else None
        except (EOFError, OSError):
            reply = None
        self._check_initialized(reply)
        if reply is not None and reply[0] == "ready":
            worker.ready = True
            return
        if worker.process.sentinel not in signalled and reply is None and worker.process.is_alive():
            return  # spurious wake-up
        exit_code = _stop(worker, _EXIT_GRACE_S)
        self.stats.deaths += 1
        self._start_deaths += 1
        if self._start_deaths >= ATTEMPTS * max(1, self.workers):
            self.close()
            raise InitializerError(f"prefetch workers died while starting ({_describe_exit(exit_code)}, "
                                   f"{self._start_deaths} times)")
        self._pool[self._pool.index(worker)] = self._spawn()

    def _check_initialized(self, reply: Any) -> None:
        """Close and raise InitializerError if ``reply`` says a worker's initializer failed."""
        if reply is not None and reply[0] == "init_failed":
            self.close()
            raise InitializerError(f"the prefetch initializer failed in a worker: {_name(reply[1])}") from reply[1]

    def _abandon(self) -> None:
        """After a map ends, however it ends: workers still holding its items are terminated."""
        busy = [worker for worker in self._pool if worker.index is not None]
        for worker in busy:
            worker.process.terminate()
        for worker in busy:
            _stop(worker, _EXIT_GRACE_S)
        self._pool = [worker for worker in self._pool if worker.index is None]  # `start` tops it up

    def _spawn(self) -> _Worker:
        context = get_context("spawn")
        mine, theirs = context.Pipe(duplex=True)
        process = context.Process(target=_serve, name="adaspark-prefetch", daemon=True,
                                  args=(theirs, self.function, self.initializer, self.initargs, self.threads))
        with _thread_environment(self.threads):
            process.start()
        theirs.close()  # only the child holds its end, so its death reads as EOF here
        return _Worker(process, mine)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Prefetcher is closed: make a new one")


# -- the caller's side: helpers ---------------------------------------------------------------------------

def _receive(conn: Connection) -> Any:
    """The next message on ``conn``, or None at its end."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _stop(worker: _Worker, grace_s: float) -> int | None:
    """Join ``worker`` within ``grace_s`` (terminate, then kill, if it lingers), close its pipe; its exit code."""
    process = worker.process
    process.join(grace_s)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join()
    worker.conn.close()
    return process.exitcode


@contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """The thread variables set to ``threads`` while a worker starts (it inherits the environment at
    exec, before anything it imports reads them); the caller's own values are restored after."""
    with _ENVIRONMENT_LOCK:
        saved = {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "TOKENIZERS_PARALLELISM")}
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _name(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- the worker's side ------------------------------------------------------------------------------------

def _serve(conn: Connection, function: Callable[[Any], Any], initializer: Callable[..., Any] | None,
           initargs: tuple[Any, ...], threads: int) -> None:
    """A worker's life: run the initializer, then ``function`` on each item received until told to stop
    (``None``) or the caller's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limited: set[str] = set()
    _limit_threads(threads, limited)
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as error:
            _send(conn, ("init_failed", _portable(error)))
            return
        _limit_threads(threads, limited)
    if not _send(conn, ("ready", None)):
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, blob = message
        try:
            reply = (index, True, function(pickle.loads(blob)))
        except Exception as error:
            reply = (index, False, _portable(error))
        _limit_threads(threads, limited)  # function may have loaded torch or cv2 just now
        try:
            if not _send(conn, reply):
                return
        except Exception as error:  # the value does not pickle: its own failure; nothing was written
            if not _send(conn, (index, False, _portable(error))):
                return


def _send(conn: Connection, message: Any) -> bool:
    """Send ``message``; False when the caller is gone."""
    try:
        conn.send(message)
    except OSError:
        return False
    return True


def _portable(error: BaseException) -> BaseException:
    """``error`` with the worker's traceback as a note, if it survives a pickle round trip; otherwise a
    :class:`RemoteError` with its type name and message."""
    try:
        error.add_note("".join(["In prefetch worker ", str(os.getpid()), ":\n",
                                *traceback.format_exception(error)]).rstrip())
    except Exception:
        pass
    try:
        restored = pickle.loads(pickle.dumps(error))
        if type(restored) is type(error) and str(restored) == str(error):
            return error
    except Exception:
        pass
    return RemoteError(f"{type(error).__module__}.{type(error).__qualname__}", str(error))


def _limit_threads(threads: int, limited: set[str]) -> None:
    """Bound torch's and OpenCV's own thread pools once each is loaded (they may not read the variables)."""
    if "torch" in sys.modules and "torch" not in limited:
        sys.modules["torch"].set_num_threads(threads)
        limited.add("torch")
    if "cv2" in sys.modules and "cv2" not in limited:
        sys.modules["cv2"].setNumThreads(threads)
        limited.add("cv2")
