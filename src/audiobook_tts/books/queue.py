"""Book jobs through a task queue on Redis (Dramatiq), for many workers and API replicas.

    API replica --submit--> job folder on the shared volume (job.json, plan.json, source/)
                --enqueue-> a `piece` message a chapter, on the queue of the job's engine
    worker      <-fetch---- a piece: the chapter made (or found made) in the shared store
                            and placed in the job's files; the last piece enqueues `join`
    worker      <-fetch---- join: the M4B and book.json, and the job is `done`

Each `audiobook-tts worker` is one process holding its engines, running one task at a time
(a thread: no process forked per task). A message is acknowledged once its task is done;
a worker that stops sending heartbeats (killed, its machine gone) has its unacknowledged
messages put back on the queue by the next worker that looks (Dramatiq's Redis broker), and
the chapter it was making is made by another; what the dead one had stored is found made.
Stored files are written under names of their own and renamed, so two workers that make one
chapter never write one file. Job records are changed under a Redis lock; progress,
cancellation and which pieces are done are kept in Redis, readable from any replica.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TypeVar

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Retries

from audiobook_tts.books.jobs import JobStore, QueueUnavailable
from audiobook_tts.books.making import Cancelled
from audiobook_tts.books.records import CANCELLED, FAILED, QUEUED, RUNNING, Job, Progress
from audiobook_tts.books.runners import Work, runner_for
from audiobook_tts.config import ServiceSettings, choose_book_engine
from audiobook_tts.engines import EngineError, check_engine, load_engine
from audiobook_tts.engines.base import Engine
from audiobook_tts.listening.listener import Hearing

T = TypeVar("T")
NAMESPACE = "audiobook-tts"
PIECE, JOIN = "piece", "join"
# How long a job's keys stay in Redis after it ends (its record is on the volume).
KEPT_SECONDS = 7 * 24 * 3600
# A Redis restart is waited out this long by a worker that has work to record.
RECONNECT_SECONDS = 120.0
CANCEL_CHECK_SECONDS = 0.5


def queue_of(engine: str) -> str:
    """Each engine has its queue: a job waits for a worker that holds its engine."""
    return f"book-{engine}"


def _key(*parts: str) -> str:
    return ":".join((NAMESPACE, *parts))


def broker_for(url: str, heartbeat_seconds: int) -> RedisBroker:
    # Retries: a task that raised (Redis gone mid-task, a worker stopping) is tried again;
    # no time limit (a chapter of a slow engine takes what it takes), maintenance on every
    # call (a dead worker's messages go back at the next look, not one call in a thousand).
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=url,
        namespace=NAMESPACE,
        heartbeat_timeout=heartbeat_seconds * 1000,
        maintenance_chance=MAINTENANCE_SCALE,
        middleware=[Retries(max_retries=100, min_backoff=500, max_backoff=10_000)],
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=10,
    )


class RedisQueue:
    """The API's side of the queue (and the records' lock, for workers too)."""

    def __init__(self, url: str, heartbeat_seconds: int) -> None:
        self.url = url
        self.broker = broker_for(url, heartbeat_seconds)
        self.client: redis.Redis = self.broker.client
        self.store: JobStore | None = None

    def problem(self) -> str | None:
        """One line when the queue does not answer, else None."""
        try:
            self.client.ping()
        except redis.RedisError as error:
            return f"the queue at {_safe(self.url)} does not answer: {error}"
        return None

    @contextmanager
    def _locked(self, job_id: str) -> Iterator[None]:
        lock = self.client.lock(_key("lock", job_id), timeout=60, blocking_timeout=30)
        try:
            lock.acquire()
        except redis.RedisError as error:
            raise QueueUnavailable(f"the queue does not answer: {error}") from None
        try:
            yield
        finally:
            with suppress(redis.RedisError):
                lock.release()

    def locker(self, job_id: str) -> AbstractContextManager[None]:
        return self._locked(job_id)

    def accept(self, job: Job) -> None:
        """A message a piece of the job, on its engine's queue; QueueUnavailable when Redis
        does not take them (the job's folder is then removed by the store)."""
        if self.store is None:
            raise QueueUnavailable("the queue has no job store")
        try:
            self.client.ping()
            for index in range(runner_for(job).pieces(job, self.store)):
                self.broker.enqueue(_message(job, PIECE, index))
        except redis.RedisError as error:
            raise QueueUnavailable(f"the queue does not answer: {error}") from None

    def request_cancel(self, job_id: str) -> None:
        try:
            self.client.set(_key("cancel", job_id), "1", ex=KEPT_SECONDS)
        except redis.RedisError as error:
            raise QueueUnavailable(f"the queue does not answer: {error}") from None

    def progress(self, job: Job) -> Progress | None:
        try:
            return job_progress(self.client, job)
        except redis.RedisError:
            return None


def _safe(url: str) -> str:
    """The URL without a password."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def _message(job: Job, actor: str, index: int = 0) -> dramatiq.Message[None]:
    return dramatiq.Message(
        queue_name=queue_of(job.options.engine),
        actor_name=actor,
        args=(job.id, index),
        kwargs={},
        options={},
    )


def job_progress(client: redis.Redis, job: Job) -> Progress:
    """Where a running job stands, from what its workers record in Redis."""
    done = {int(i) for i in client.smembers(_key("done", job.id))}
    found = {int(i) for i in client.smembers(_key("found", job.id))}
    speaking = {
        int(index): int(count) for index, count in client.hgetall(_key("speaking", job.id)).items()
    }
    started = client.get(_key("started", job.id))
    sentences = [chapter.sentences for chapter in job.chapters]
    sentences_done = sum(sentences[i] for i in done if i < len(sentences))
    spoken = sum(count for index, count in speaking.items() if index not in done)
    synthesised = spoken + sum(sentences[i] for i in done - found if i < len(sentences))
    total = sum(sentences)
    seconds_left = None
    if started is not None and synthesised:
        elapsed = time.time() - float(started)
        if elapsed > 0:
            seconds_left = round(
                max(0.0, (total - sentences_done - spoken) * elapsed / synthesised), 1
            )
    current = [
        job.chapters[i].title for i in sorted(speaking) if i not in done and i < len(job.chapters)
    ]
    return Progress(
        chapters_done=len(done),
        chapters_total=len(job.chapters),
        chapters_found_made=len(found),
        sentences_done=sentences_done + spoken,
        sentences_total=total,
        chapter=current[0] if current else "",
        seconds_left=seconds_left,
    )


# -- the worker -----------------------------------------------------------------------------


class Stopping(Exception):
    """The worker is stopping: the task is put back (tried again by a worker)."""


def persist(action: Callable[[], T], seconds: float = RECONNECT_SECONDS) -> T:
    """`action`, tried again while Redis is away (restarting), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except (redis.ConnectionError, QueueUnavailable):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class QueueWorker:
    """One worker process: its engines loaded once, one task at a time."""

    def __init__(
        self,
        settings: ServiceSettings,
        engines: dict[str, Engine],
        listener: Hearing | None = None,
    ) -> None:
        self.settings = settings
        self.engines = engines
        self.listener = listener
        self.queue = RedisQueue(settings.queue, settings.queue_heartbeat)
        self.client = self.queue.client
        self.store = JobStore(Path(settings.data), settings.max_book_bytes, self.queue.locker)
        self.queue.store = self.store
        self.stopping = threading.Event()

    def cancelled(self, job_id: str) -> bool:
        try:
            return bool(self.client.exists(_key("cancel", job_id)))
        except redis.RedisError:
            return False

    def _engine(self, job: Job) -> Engine:
        return self.engines[choose_book_engine(job.options.engine, tuple(self.engines))]

    def _end_cancelled(self, job_id: str) -> None:
        persist(
            lambda: self.store.update(
                job_id, lambda job: self.store.end_cancelled(job) if job.unfinished else None
            )
        )

    def _fail(self, job_id: str, message: str) -> None:
        print(f"error: book job {job_id}: {message}", file=sys.stderr, flush=True)
        persist(
            lambda: self.store.update(
                job_id,
                lambda job: job.with_status(FAILED, error=message) if job.unfinished else None,
            )
        )

    def _take(self, job_id: str) -> Job | None:
        """The job, `running` now, when it is still to be made; None when it is not."""
        job = self.store.read(job_id)
        if job is None or not job.unfinished:
            return None
        if self.cancelled(job_id):
            self._end_cancelled(job_id)
            return None
        if job.status == QUEUED:
            persist(
                lambda: self.client.set(
                    _key("started", job_id), str(time.time()), nx=True, ex=KEPT_SECONDS
                )
            )
            job = persist(
                lambda: self.store.update(
                    job_id, lambda job: job.with_status(RUNNING) if job.status == QUEUED else None
                )
            )
        return job if job is not None and job.unfinished else None

    def piece(self, job_id: str, index: int) -> None:
        job = self._take(job_id)
        if job is None:
            return
        runner = runner_for(job)
        checked = [0.0, False]

        def should_stop() -> bool:
            if self.stopping.is_set():
                return True
            now = time.monotonic()
            if now - checked[0] > CANCEL_CHECK_SECONDS:
                checked[:] = [now, self.cancelled(job_id)]
            return bool(checked[1])

        def on_sentences(done: int, _total: int) -> None:
            with suppress(redis.RedisError):
                self.client.hset(_key("speaking", job_id), str(index), str(done))
            if should_stop():
                raise Cancelled("stopped")

        try:
            found = runner.piece(
                job,
                index,
                Work(
                    self.store,
                    self._engine(job),
                    should_stop=should_stop,
                    on_sentences=on_sentences,
                    listener=self.listener,
                ),
            )
        except Cancelled:
            if self.stopping.is_set():
                raise Stopping("the worker is stopping") from None
            self._end_cancelled(job_id)
            return
        except (redis.RedisError, QueueUnavailable, Stopping):
            raise
        except Exception as error:  # a chapter that cannot be made fails its job
            self._fail(job_id, f"{type(error).__name__}: {error}")
            return
        pieces = runner.pieces(job, self.store)

        def record() -> int:
            with self.client.pipeline() as pipe:
                pipe.sadd(_key("done", job_id), str(index))
                if found:
                    pipe.sadd(_key("found", job_id), str(index))
                pipe.hdel(_key("speaking", job_id), str(index))
                for name in ("done", "found", "speaking"):
                    pipe.expire(_key(name, job_id), KEPT_SECONDS)
                pipe.scard(_key("done", job_id))
                return int(pipe.execute()[-1])

        made = persist(record)
        print(
            f"book job {job_id}: chapter {index + 1} of {pieces} "
            f"{'found made' if found else 'made'}",
            file=sys.stderr,
            flush=True,
        )
        if made >= pieces:
            # The last piece: the join (enqueued again by a redelivered piece; a join of a job
            # already done does nothing).
            persist(lambda: self.queue.broker.enqueue(_message(job, JOIN)))

    def join(self, job_id: str, _index: int = 0) -> None:
        job = self._take(job_id)
        if job is None:
            return
        try:
            done = runner_for(job).join(
                job, Work(self.store, self._engine(job), listener=self.listener)
            )
        except (redis.RedisError, QueueUnavailable, Stopping):
            raise
        except Exception as error:
            self._fail(job_id, f"{type(error).__name__}: {error}")
            return
        found = len(persist(lambda: self.client.smembers(_key("found", job_id))))
        finished = done.with_status(done.status, chapters_found_made=found)

        def finish(job: Job) -> Job | None:
            if not job.unfinished:
                return None
            if self.cancelled(job_id):
                return self.store.end_cancelled(job, CANCELLED)
            return finished

        result = persist(lambda: self.store.update(job_id, finish))
        print(
            f"book job {job_id}: {result.status if result else 'gone'}", file=sys.stderr, flush=True
        )

    def declare(self) -> None:
        broker = self.queue.broker
        dramatiq.set_broker(broker)
        for name, function in ((PIECE, self.piece), (JOIN, self.join)):
            dramatiq.actor(  # type: ignore[call-overload]
                function,
                actor_name=name,
                broker=broker,
                queue_name=queue_of(next(iter(self.engines))),
            )
        for engine in self.engines:
            broker.declare_queue(queue_of(engine))

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT: the task at hand stops at its next sentence and is
        put back for another worker."""
        self.declare()
        queues = {queue_of(engine) for engine in self.engines}
        worker = dramatiq.Worker(self.queue.broker, queues=queues, worker_threads=1)
        # A worker holds one task (and one retried): the others are for other workers.
        worker.queue_prefetch = 1
        worker.delay_prefetch = 1
        stopped = threading.Event()

        def stop(_signal: int, _frame: FrameType | None) -> None:
            self.stopping.set()
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        heartbeat = threading.Thread(target=self._heartbeat, args=(queues, stopped), daemon=True)
        worker.start()
        heartbeat.start()
        print(
            f"worker: {', '.join(self.engines)} on {_safe(self.settings.queue)}, "
            f"files in {self.settings.data}",
            file=sys.stderr,
            flush=True,
        )
        stopped.wait()
        worker.stop(timeout=30_000)
        return 0

    def _heartbeat(self, queues: set[str], stopped: threading.Event) -> None:
        """Dramatiq's Redis broker hears from a worker when it fetches, which a worker busy
        with one long chapter does not: a call a few times a heartbeat keeps it alive (and
        puts a dead worker's messages back on the queue)."""
        interval = max(0.5, self.settings.queue_heartbeat / 4)
        while not stopped.wait(interval):
            for queue in sorted(queues):
                with suppress(redis.RedisError):
                    self.queue.broker.do_qsize(queue)


def run_worker(settings: ServiceSettings, listener: Hearing | None = None) -> int:
    """`audiobook-tts worker`: load the engines, then take tasks until stopped; `listener`
    (loaded by the caller, as for `serve`) hears each chapter as it is made."""
    if not settings.queue or not settings.data:
        print(
            "error: a worker needs AUDIOBOOK_TTS_QUEUE (redis://host:6379/0) and "
            "AUDIOBOOK_TTS_DATA (the volume the API replicas share)",
            file=sys.stderr,
        )
        return 2
    engines: dict[str, Engine] = {}
    for name in settings.engines:
        try:
            check_engine(name, settings)
            engines[name] = load_engine(name, settings)
        except EngineError as error:
            # Its jobs wait on their engine's queue for a worker that has it.
            print(f"error: the {name} engine cannot load: {error}", file=sys.stderr)
            return 3
    worker = QueueWorker(settings, engines, listener)
    problem = worker.queue.problem()
    if problem is not None:
        print(f"warning: {problem}; waiting for it", file=sys.stderr, flush=True)
    return worker.serve()
