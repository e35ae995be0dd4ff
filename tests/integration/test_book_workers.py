"""Book jobs through the Redis queue with real processes: Debian's redis-server on a loopback
port, API replicas (`audiobook-tts serve`) and workers (`audiobook-tts worker`, espeak), one
data folder shared as a volume would be. Each fault of docs/workers.md is made here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from audiobook_tts.cli import main
from tests import bookfiles
from tests.redisserver import RedisServer, free_port

SRC = Path(__file__).resolve().parents[2] / "src"
SENTENCE = "The lamp burned low while the rain kept falling on the roof of the old house. "
LONG_CHAPTERS = tuple((title, SENTENCE * 12) for title in ("First", "Second", "Third"))


@dataclass
class Cluster:
    """Redis, the data folder, and the processes started on them (stopped at the end)."""

    root: Path
    redis: RedisServer
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("AUDIOBOOK_TTS_")
        }
        env.update(
            PYTHONPATH=str(SRC),
            AUDIOBOOK_TTS_QUEUE=self.redis.url,
            AUDIOBOOK_TTS_DATA=str(self.data),
            AUDIOBOOK_TTS_ENGINES="espeak",
            AUDIOBOOK_TTS_QUEUE_HEARTBEAT="2",
            AUDIOBOOK_TTS_LISTENER_MODEL="off",  # the listener's own tests hear books
        )
        env.update(extra)
        return env

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "audiobook_tts", *args],
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def worker(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", **extra)

    def api(self, name: str, **extra: str) -> str:
        port = free_port()
        process = self.start(name, "serve", "--host", "127.0.0.1", "--port", str(port), **extra)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, self.log(name)
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{name} never ready: {self.log(name)}")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def worker_logs(self) -> str:
        return "".join(self.log(name) for name in self.processes if name.startswith("worker"))

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path, RedisServer(tmp_path / "redis").start())
    try:
        yield running
    finally:
        running.stop()


def submit(url: str, book: bytes, name: str = "book.epub") -> dict[str, object]:
    response = httpx.post(
        f"{url}/v1/audiobook/books",
        files={"file": (name, book, "application/epub+zip")},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job: dict[str, object] = response.json()
    return job


def status_of(url: str, job_id: object) -> dict[str, object]:
    status: dict[str, object] = httpx.get(f"{url}/v1/audiobook/jobs/{job_id}", timeout=10).json()
    return status


def wait_for(
    url: str, job_id: object, until: tuple[str, ...] = ("done",), seconds: float = 300
) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            status = status_of(url, job_id)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if status["status"] in until:
            return status
        assert status["status"] in ("queued", "running"), status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not {until} in {seconds} s: {status}")


def wait_speaking(url: str, job_id: object) -> dict[str, object]:
    """The job once a worker is in the middle of its first chapter."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = status_of(url, job_id)["progress"]
        if progress["sentences_done"] >= 3 and progress["chapters_done"] == 0:  # type: ignore[index]
            return progress  # type: ignore[return-value]
        time.sleep(0.02)
    raise AssertionError("no worker began the book")


def download(url: str, job_id: object, names: object) -> dict[str, bytes]:
    return {
        name: httpx.get(f"{url}/v1/audiobook/jobs/{job_id}/files/{name}", timeout=60).content
        for name in names  # type: ignore[attr-defined]
    }


def made_lines(logs: str) -> list[tuple[str, str]]:
    """(job, chapter) of each chapter a worker made (not found made)."""
    return re.findall(r"book job (\w+): chapter (\d+) of \d+ made$", logs, re.MULTILINE)


def finished_lines(cluster: Cluster, job_id: object) -> int:
    """How many workers said they finished the job (its record says done before they say so)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        count = cluster.worker_logs().count(f"book job {job_id}: done")
        if count:
            return count
        time.sleep(0.1)
    return 0


def test_a_killed_worker_s_chapter_is_made_by_another_and_the_files_are_the_same(
    cluster: Cluster, tmp_path: Path
) -> None:
    book = bookfiles.epub(chapters=LONG_CHAPTERS)
    api = cluster.api("api")
    doomed = cluster.worker("worker-doomed")
    job_id = submit(api, book)["id"]
    wait_speaking(api, job_id)
    doomed.send_signal(signal.SIGKILL)  # in the middle of a chapter: no chance to tidy up
    doomed.wait()
    assert made_lines(cluster.log("worker-doomed")) == []
    cluster.worker("worker-2")
    cluster.worker("worker-3")
    done = wait_for(api, job_id)
    assert done["progress"]["chapters_done"] == 3  # type: ignore[index]
    made = made_lines(cluster.worker_logs())
    assert sorted(made) == [(job_id, str(n)) for n in range(1, 4)]  # each chapter made once
    assert finished_lines(cluster, job_id) == 1
    files = download(api, job_id, done["files"])
    # An uninterrupted run of the same book, by the command line, in a store of its own.
    (tmp_path / "book.epub").write_bytes(book)
    whole = tmp_path / "whole"
    assert main(
        ["book", str(tmp_path / "book.epub"), "-o", str(whole), "--engine", "espeak", "--no-check"]
    ) in (
        0,
        3,
    )
    assert sorted(files) == sorted(path.name for path in whole.iterdir() if path.is_file())
    assert len(files) == 5  # three chapters, the M4B, book.json
    assert files == {name: (whole / name).read_bytes() for name in files}


def test_a_book_finishes_when_redis_restarts_in_its_middle(cluster: Cluster) -> None:
    api = cluster.api("api")
    cluster.worker("worker-1")
    job_id = submit(api, bookfiles.epub(chapters=LONG_CHAPTERS))["id"]
    wait_speaking(api, job_id)
    cluster.redis.stop()  # its AOF written; the worker keeps speaking meanwhile
    time.sleep(1.0)
    cluster.redis.start()
    done = wait_for(api, job_id)
    assert done["progress"]["chapters_done"] == 3 and len(done["files"]) == 5  # type: ignore[index,arg-type]


def test_two_replicas_and_two_workers_make_each_job_once(cluster: Cluster) -> None:
    apis = [cluster.api("api-1"), cluster.api("api-2")]
    cluster.worker("worker-1")
    cluster.worker("worker-2")
    books = [
        bookfiles.epub(
            chapters=tuple(
                (f"Part {n}", f"Book {b}, part {n}. " + SENTENCE * 4) for n in range(1, 3)
            )
        )
        for b in range(3)
    ]
    jobs = [submit(apis[n % 2], book)["id"] for n, book in enumerate(books)]
    for n, job_id in enumerate(jobs):
        done = wait_for(apis[(n + 1) % 2], job_id)  # read from the replica that did not take it
        assert done["progress"]["chapters_done"] == 2  # type: ignore[index]
        m4b = httpx.get(f"{apis[(n + 1) % 2]}/v1/audiobook/jobs/{job_id}/files/book.m4b")
        assert m4b.status_code == 200 and len(m4b.content) > 1000
    listed = [
        sorted(j["id"] for j in httpx.get(f"{url}/v1/audiobook/jobs").json()["jobs"])
        for url in apis
    ]
    assert listed[0] == listed[1] == sorted(jobs)  # type: ignore[type-var]
    logs = cluster.worker_logs()
    assert sorted(made_lines(logs)) == sorted((j, str(n)) for j in jobs for n in (1, 2))
    for job_id in jobs:
        assert finished_lines(cluster, job_id) == 1
    # The chapters were shared: both workers made some.
    assert all(made_lines(cluster.log(name)) for name in ("worker-1", "worker-2"))


def test_a_cancel_reaches_the_running_chapter(cluster: Cluster) -> None:
    api = cluster.api("api")
    cluster.worker("worker-1")
    # A chapter long enough to be caught in: the cancel must stop it, not wait for its end.
    book = bookfiles.epub(chapters=(("Long", SENTENCE * 60), ("Short", SENTENCE * 2)))
    job_id = submit(api, book)["id"]
    wait_speaking(api, job_id)
    assert httpx.delete(f"{api}/v1/audiobook/jobs/{job_id}").json()["status"] == "running"
    cancelled = wait_for(api, job_id, until=("cancelled",), seconds=60)
    assert cancelled["files"] == [] and made_lines(cluster.log("worker-1")) == []
    # The worker goes on to the next job.
    small = bookfiles.epub(chapters=(("Only", "A short one. " + SENTENCE),))
    assert wait_for(api, submit(api, small)["id"])["status"] == "done"


def test_a_worker_whose_engine_cannot_load_leaves_the_job_to_one_that_can(cluster: Cluster) -> None:
    api = cluster.api("api")
    job_id = submit(api, bookfiles.epub())["id"]
    broken = cluster.worker("worker-broken", AUDIOBOOK_TTS_ENGINES="csm")
    assert broken.wait(60) == 3
    lines = cluster.log("worker-broken").strip().splitlines()
    assert lines == [
        "error: the csm engine cannot load: AUDIOBOOK_TTS_CSM_MODEL is not set: mount a CSM model directory"
    ]
    assert status_of(api, job_id)["status"] == "queued"
    cluster.worker("worker-good")
    assert wait_for(api, job_id)["status"] == "done"


def test_a_queue_that_does_not_answer_is_said_at_start_and_a_submit_is_503(
    cluster: Cluster,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    api = cluster.api("api", AUDIOBOOK_TTS_QUEUE=nowhere)
    said = [line for line in cluster.log("api").splitlines() if "does not answer" in line]
    assert len(said) == 1 and nowhere in said[0], cluster.log("api")
    response = httpx.post(
        f"{api}/v1/audiobook/books", files={"file": ("b.epub", bookfiles.epub())}, timeout=60
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["type"] == "server_error"
    jobs = cluster.data / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []  # nothing half-written
    assert httpx.get(f"{api}/v1/audiobook/jobs").json() == {"jobs": []}
