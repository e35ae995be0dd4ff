"""The embedded worker: with no queue configured, the service's one process takes, runs,
stops and resumes its book jobs itself, one at a time, from the job folders on its volume.

A job is taken when it is the oldest unfinished one (one left `running` by a stopped service
comes first) and its engine has loaded; it is run in a thread counted against the service's
running limit. A service that stops leaves its running job `running`: the next start takes
it up again, and the chapters made before are found in the store.
"""

from __future__ import annotations

import sys
import threading
from contextlib import suppress

import anyio

from audiobook_tts.books.jobs import JobStore
from audiobook_tts.books.making import BookProgress, Cancelled
from audiobook_tts.books.records import CANCELLED, FAILED, RUNNING, Job, Progress
from audiobook_tts.books.runners import Work, runner_for
from audiobook_tts.config import SettingsError, choose_book_engine
from audiobook_tts.engines.base import Engine
from audiobook_tts.listening.listener import Hearing
from audiobook_tts.synthesis import Synthesis

POLL_SECONDS = 0.5


class LocalQueue:
    """Jobs of this process: nothing to hand over (the worker finds them on the volume); the
    running job's progress and the cancel requests are kept here."""

    def __init__(self) -> None:
        self.running: dict[str, BookProgress] = {}
        self.cancelled: set[str] = set()

    def accept(self, job: Job) -> None:
        pass

    def request_cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)

    def progress(self, job: Job) -> Progress | None:
        running = self.running.get(job.id)
        return None if running is None else Progress.of(running)


def fail(store: JobStore, job_id: str, message: str) -> None:
    store.update(job_id, lambda job: job.with_status(FAILED, error=message))


class EmbeddedWorker:
    """The one owner of a single service's jobs: `serve` is the loop the app starts."""

    def __init__(self, store: JobStore, queue: LocalQueue) -> None:
        self.store = store
        self.queue = queue
        self.stopping = threading.Event()

    def next_job(self) -> Job | None:
        """The oldest unfinished job: one left `running` by a stopped service comes first."""
        unfinished = [job for job in self.store.every() if job.unfinished]
        unfinished.sort(key=lambda job: (job.status != RUNNING, job.created))
        return unfinished[0] if unfinished else None

    def run(self, job: Job, engine: Engine, listener: Hearing | None = None) -> str:
        """Make the job; returns its status after (`running` when the service stops)."""
        taken = self.store.update(
            job.id, lambda job: job.with_status(RUNNING) if job.unfinished else None
        )
        if taken is None or taken.status != RUNNING:
            return "" if taken is None else taken.status
        job_id = job.id

        def on_progress(progress: BookProgress) -> None:
            self.queue.running[job_id] = progress

        def should_stop() -> bool:
            return self.stopping.is_set() or job_id in self.queue.cancelled

        try:
            work = Work(self.store, engine, on_progress, should_stop, listener=listener)
            done = runner_for(taken).run(taken, work)
        except Cancelled:
            if job_id not in self.queue.cancelled:
                return RUNNING  # the service is stopping: taken up again at its next start
            self.store.update(job_id, self.store.end_cancelled)
            self.queue.cancelled.discard(job_id)
            return CANCELLED
        except Exception as error:  # a failed book is reported, not raised
            fail(self.store, job_id, f"{type(error).__name__}: {error}")
            return FAILED
        finally:
            self.queue.running.pop(job_id, None)
        self.store.update(job_id, lambda _: done)
        return done.status

    async def serve(self, synthesis: Synthesis) -> None:
        """Take and run jobs until the service stops, once each job's engine has loaded."""
        while not self.stopping.is_set():
            # One read of the records a turn.
            job = await anyio.to_thread.run_sync(self.next_job)
            if job is None:
                await anyio.sleep(POLL_SECONDS)
                continue
            try:
                name = choose_book_engine(job.options.engine, synthesis.settings.engines)
            except SettingsError:
                message = f"the {job.options.engine} engine is not loaded by this service"
                await anyio.to_thread.run_sync(fail, self.store, job.id, message)
                continue
            if name not in synthesis.engines:
                await anyio.sleep(POLL_SECONDS)  # still loading (csm): the job waits
                continue
            try:
                await synthesis.in_thread(
                    self.run, job, synthesis.engines[name], synthesis.listener
                )
            except Exception as error:  # a job that cannot even start must not stop the service
                print(f"error: book job {job.id}: {error}", file=sys.stderr, flush=True)
                with suppress(OSError, ValueError):
                    message = f"{type(error).__name__}: {error}"
                    await anyio.to_thread.run_sync(fail, self.store, job.id, message)
