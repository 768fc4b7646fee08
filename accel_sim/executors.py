"""Where tasks run: a local process pool over all cores, or a Dask distributed cluster (an
existing scheduler, or a `LocalCluster` started for the work). Both take a function of a
plain dict and hand back its plain result: a sweep's points (`run`, with retries), or a
chip replay's shards of presentations (`submit`: a future, in the order asked).

A worker first imports the modules that registered a network family or fidelity from
outside the package (registry.plugin_modules): a config of such a family reads the same
in the worker as here.

A worker lost in the middle of a task (its process killed or crashed) costs one retry of
that task; a second loss is recorded as the task's failure. The local pool retries here
(the tasks that were running when a worker was lost are re-run one by one, so that a loss
is charged to the task that caused it);
on a Dask cluster this sweep starts, the scheduler does (`allowed-failures` set to 1); an
external scheduler applies its own setting.
"""
from __future__ import annotations

import multiprocessing
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from . import registry
from .errors import RunError

__all__ = ["LOST_WORKER", "DaskExecutor", "LocalExecutor", "Task", "make_executor"]

#: how a task whose worker was lost twice is reported
LOST_WORKER = "the worker running this point was lost twice (killed or crashed)"


def _with_plugins(fn: Callable[[dict], Any], payload: dict, plugins: tuple[str, ...]) -> Any:
    """What a worker runs: the plug-ins registered where the sweep started, then the task."""
    registry.import_plugins(plugins)
    return fn(payload)


@dataclass
class Task:
    key: str
    fn: Callable[[dict], Any]
    payload: dict
    attempts: int = field(default=0)


class LocalExecutor:
    """A process pool (spawned workers: no fork of a process that holds threads)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._plugins = registry.plugin_modules()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, Any, str | None]]:
        """Yields (task, result, None) or (task, None, error line) as tasks finish.

        At most one task per worker is in the pool, so a lost worker breaks the pool under
        the tasks that were running (or about to). Each of them is then run again alone,
        where a lost worker is its own: it is retried once, and a second loss is its
        failure."""
        queue, running, suspects = deque(tasks), {}, deque()
        while queue or running or suspects:
            if suspects and not running:
                yield self._alone(suspects.popleft())
                continue
            while queue and not suspects and len(running) < self.workers:
                task = queue.popleft()
                task.attempts += 1
                running[self._submit(task)] = task
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = running.pop(fut)
                try:
                    yield task, fut.result(), None
                except BrokenProcessPool:
                    suspects.append(task)
                    broken = True
                except Exception as exc:  # noqa: BLE001 - a crash in the task: recorded, the sweep goes on
                    yield task, None, _crash_line(exc)
            if broken:  # every task still in the pool went down with it
                suspects.extend(running.values())
                running.clear()
                self._restart()

    def _alone(self, task: Task) -> tuple[Task, Any, str | None]:
        """Run a suspect by itself: a lost worker now is its own; it gets one more try."""
        for _ in range(2):
            task.attempts += 1
            try:
                return task, self._submit(task).result(), None
            except BrokenProcessPool:
                self._restart()
            except Exception as exc:  # noqa: BLE001 - a crash in the task is its failure
                return task, None, _crash_line(exc)
        return task, None, LOST_WORKER

    def _submit(self, task: Task):
        return self._pool.submit(_with_plugins, task.fn, task.payload, self._plugins)

    def submit(self, fn: Callable[[dict], Any], payload: dict):
        """One task, now: a future whose `result()` is fn(payload) (a lost worker raises)."""
        return self._submit(Task("", fn, payload))

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The same tasks on a Dask distributed cluster (`pip install "neuro-accel-sim[dask]"`)."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise RunError('--executor dask needs Dask distributed: pip install '
                           '"neuro-accel-sim[dask]"') from None
        self._cluster, self._resources = None, None
        if scheduler:
            try:
                self._client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise RunError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        else:
            # a task holds a worker's one "point" slot: none waits on a worker behind
            # another, so a lost worker costs a retry only to the task it was running.
            # No statistical profiler in the workers (sampling the stack every 10 ms takes
            # the GIL from the replay, which is Python), and the workers get this process's
            # environment: Dask's default MALLOC_TRIM_THRESHOLD_=65536 made every replay
            # ~20 % slower than in the local pool (measured: benchmarks/sweep.py)
            with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                                  "distributed.worker.profile.enabled": False,
                                  "distributed.admin.system-monitor.gil.enabled": False,
                                  "distributed.nanny.pre-spawn-environ": {}}):
                self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                             threads_per_worker=1, processes=True,
                                             resources={"point": 1}, dashboard_address=None)
            self._resources = {"point": 1}
            self._client = Client(self._cluster)
        self.workers = len(self._client.scheduler_info()["workers"])

    @property
    def address(self) -> str:
        return self._client.scheduler.address

    def submit(self, fn: Callable[[dict], Any], payload: dict):
        """One task, now: a future whose `result()` is fn(payload)."""
        return self._client.submit(_with_plugins, fn, payload, registry.plugin_modules(),
                                   key=f"task-{uuid.uuid4().hex[:12]}", pure=False,
                                   resources=self._resources)

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, Any, str | None]]:
        from distributed import as_completed
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        futures, plugins = {}, registry.plugin_modules()
        for t in tasks:
            t.attempts += 1
            futures[self._client.submit(_with_plugins, t.fn, t.payload, plugins,
                                        key=f"{t.key}-{uuid.uuid4().hex[:8]}", pure=False,
                                        resources=self._resources)] = t
        for fut in as_completed(list(futures)):
            task = futures[fut]
            try:
                yield task, fut.result(), None
            except (KilledWorker, FutureCancelledError):
                yield task, None, LOST_WORKER
            except Exception as exc:  # noqa: BLE001 - a crash in the task is its failure
                yield task, None, _crash_line(exc)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _crash_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"crash: {type(exc).__name__}: {first}".rstrip(": ")


def make_executor(kind: str, workers: int | None, scheduler: str | None):
    if kind == "local":
        if scheduler:
            raise RunError("--scheduler is for --executor dask")
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(workers, scheduler)
    raise RunError(f"unknown executor {kind!r} (local or dask)")
