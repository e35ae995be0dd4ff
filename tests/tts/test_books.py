"""Whole books through the running images: an EPUB the tests make becomes chapter MP3s that
pass every ACX figure (measured here), an M4B whose chapters ffprobe lists, and book.json;
a job whose container is killed in its second chapter finishes after a restart without
making chapter 1 again, into the same files as an uninterrupted run; the command line's
Ctrl-C and resume; bad books refused with nothing written; piper and the tiny CSM model
read books too. Real containers and engines, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from python_on_whales import DockerClient

from tests import bookfiles
from tests.containers import Service, running_service, wait_for_health

from .analysis import decode, mp3_frame_bitrates, noise_floor_db, peak_dbfs, quiet_edges, rms_db
from .test_csm import make_tiny_model, readable

pytestmark = [pytest.mark.docker, pytest.mark.tts]
TITLES = [title for title, _ in bookfiles.CHAPTERS]
FILES = ["chapter-02.mp3", "chapter-03.mp3", "chapter-04.mp3"]
# Chapters long enough that a job can be caught in its second one.
SENTENCE = "The lamp burned low while the rain kept falling on the roof of the old house. "
LONG_CHAPTERS = tuple((title, SENTENCE * 40) for title in ("First", "Second", "Third"))


def writable(folder: Path) -> Path:
    """A host folder the container's user (10001) can write: a volume for /data."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o777)
    return folder


@contextmanager
def book_service(
    docker_client: DockerClient, image: str, data: Path, engines: str = "espeak", **envs: str
) -> Iterator[Service]:
    """The image serving books from `data`; `engines` loaded (empty: the image's own)."""
    if engines:
        envs = {"AUDIOBOOK_TTS_ENGINES": engines, **envs}
    with running_service(
        docker_client,
        image,
        "books",
        path="/readyz",
        timeout=120.0,
        volumes=[(writable(data), "/data")],
        envs=envs,
    ) as started:
        yield started


def submit(url: str, book: bytes, name: str = "tales.epub", **form: str) -> dict[str, object]:
    response = httpx.post(
        f"{url}/v1/audiobook/books",
        files={"file": (name, book, "application/epub+zip")},
        data=form,
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job: dict[str, object] = response.json()
    return job


def status_of(url: str, job_id: object) -> dict[str, object]:
    status: dict[str, object] = httpx.get(f"{url}/v1/audiobook/jobs/{job_id}", timeout=10).json()
    return status


def wait_done(url: str, job_id: object, seconds: float = 600) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = status_of(url, job_id)
        assert status["status"] not in ("failed", "cancelled"), status
        if status["status"] == "done":
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not done in {seconds} s: {status}")


def download(url: str, job_id: object, names: list[str]) -> dict[str, bytes]:
    files = {}
    for name in names:
        response = httpx.get(f"{url}/v1/audiobook/jobs/{job_id}/files/{name}", timeout=60)
        assert response.status_code == 200, (name, response.text)
        files[name] = response.content
    return files


def ffprobe(path: Path) -> dict[str, object]:
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_chapters",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    probed: dict[str, object] = json.loads(result.stdout)
    return probed


@pytest.fixture(scope="module")
def espeak_image(image: str) -> str:
    """The default image (espeak and piper), its book services told to load espeak alone."""
    return image


def test_an_epub_becomes_acx_chapters_an_m4b_and_book_json(
    docker_client: DockerClient, espeak_image: str, tmp_path: Path
) -> None:
    with book_service(docker_client, espeak_image, tmp_path / "data") as service:
        job = submit(service.url, bookfiles.epub())
        assert [c["title"] for c in job["chapters"]] == TITLES  # type: ignore[attr-defined]
        done = wait_done(service.url, job["id"])
        assert done["options"]["engine"] == "espeak"  # type: ignore[index]
        files = download(service.url, job["id"], [*FILES, "book.m4b", "book.json"])
    book = json.loads(files["book.json"])
    assert (book["title"], book["author"]) == (bookfiles.TITLE, bookfiles.AUTHOR)
    for name, chapter in zip(FILES, book["chapters"], strict=True):
        audio = decode(files[name], "mp3")
        rms, peak = rms_db(audio.samples), peak_dbfs(audio.samples)
        floor = noise_floor_db(audio.samples, audio.rate)
        head, tail = quiet_edges(audio.samples, audio.rate)
        bitrates = set(mp3_frame_bitrates(files[name]))
        # ACX: 44.1 kHz, CBR of 192 kbps or more, RMS -23..-18, peaks <= -3, floor <= -60,
        # room tone 0.5-1 s at the head and 1-5 s at the tail.
        assert audio.rate == 44100 and len(bitrates) == 1 and min(bitrates) >= 192, bitrates
        assert -23 <= rms <= -18 and peak <= -3.0 and floor <= -60, (name, rms, peak, floor)
        assert 0.5 <= head <= 1.0 and 1.0 <= tail <= 5.0, (name, head, tail)
        assert chapter["meets_acx"] and chapter["file"] == name
        assert abs(chapter["duration_seconds"] - audio.seconds) < 0.1
    m4b = tmp_path / "book.m4b"
    m4b.write_bytes(files["book.m4b"])
    probed = ffprobe(m4b)
    chapters = probed["chapters"]
    assert [c["tags"]["title"] for c in chapters] == TITLES  # type: ignore[attr-defined]
    tags = probed["format"]["tags"]  # type: ignore[index]
    assert (tags["title"], tags["artist"]) == (bookfiles.TITLE, bookfiles.AUTHOR)
    streams = probed["streams"]
    assert any(s["codec_name"] == "aac" for s in streams)  # type: ignore[attr-defined]
    assert any(s["disposition"]["attached_pic"] == 1 for s in streams)  # type: ignore[attr-defined]
    ends = [float(c["end_time"]) for c in chapters]  # type: ignore[attr-defined]
    durations = [c["duration_seconds"] for c in book["chapters"]]
    assert ends == pytest.approx([sum(durations[: n + 1]) for n in range(3)], abs=0.01)


def test_a_job_killed_in_its_second_chapter_resumes_without_redoing_the_first(
    docker_client: DockerClient, espeak_image: str, tmp_path: Path
) -> None:
    book = bookfiles.epub(chapters=LONG_CHAPTERS)
    data = tmp_path / "data"
    with book_service(docker_client, espeak_image, data) as service:
        job_id = submit(service.url, book)["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = status_of(service.url, job_id)
            if status["progress"]["chapters_done"] == 1:  # type: ignore[index]
                break  # chapter 1 made, chapter 2 not yet: kill it now
            assert status["status"] in ("queued", "running"), status
            time.sleep(0.05)
        else:
            raise AssertionError("the job never made its first chapter")
        service.container.kill()  # SIGKILL: no chance to tidy up
        record = json.loads((data / "jobs" / str(job_id) / "job.json").read_text())
        assert record["status"] == "running"  # left for the next start
        made = {path: path.stat().st_mtime_ns for path in (data / "chapters").glob("*.json")}
        assert 1 <= len(made) < 3, made  # chapter 1, and at most chapter 2 finished meanwhile
        service.container.start()
        wait_for_health(service.url, service.container, timeout=120.0, path="/readyz")
        done = wait_done(service.url, job_id)
        assert done["progress"]["chapters_found_made"] == len(made)  # type: ignore[index]
        assert all(path.stat().st_mtime_ns == mtime for path, mtime in made.items())
        resumed = download(service.url, job_id, done["files"])  # type: ignore[arg-type]
    with book_service(docker_client, espeak_image, tmp_path / "whole") as service:
        whole_id = submit(service.url, book)["id"]
        whole = download(service.url, whole_id, wait_done(service.url, whole_id)["files"])  # type: ignore[arg-type]
    assert sorted(resumed) == ["book.json", "book.m4b", *FILES]
    assert resumed == whole


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (bookfiles.drm_epub, "drm"),
        (bookfiles.escaping_epub, "path_escape"),
        (bookfiles.zip_bomb, "zip_bomb"),
        (lambda: b"<html>not a book</html>", "not_epub"),
        (lambda: bookfiles.epub(chapters=(("Empty", ""), ("Full", "Words."))), "no_text"),
    ],
    ids=["drm", "path-escape", "zip-bomb", "not-epub", "empty-chapter"],
)
def test_a_bad_book_is_refused_before_any_work(
    docker_client: DockerClient, espeak_image: str, tmp_path: Path, make: object, reason: str
) -> None:
    data = tmp_path / "data"
    form = {"chapters": "2"} if reason == "no_text" else {}
    with book_service(docker_client, espeak_image, data) as service:
        response = httpx.post(
            f"{service.url}/v1/audiobook/books",
            files={"file": ("book.epub", make(), "application/epub+zip")},  # type: ignore[operator]
            data=form,
            timeout=60,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == reason
        assert httpx.get(f"{service.url}/readyz", timeout=5).status_code == 200
    written = sorted(str(path.relative_to(data)) for path in data.rglob("*"))
    assert written in ([], ["jobs"]), written  # nothing, inside or outside a job's folder
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_book_over_the_size_limit_is_refused(
    docker_client: DockerClient, espeak_image: str, tmp_path: Path
) -> None:
    with book_service(
        docker_client, espeak_image, tmp_path / "data", AUDIOBOOK_TTS_MAX_BOOK_BYTES="1000"
    ) as service:
        response = httpx.post(
            f"{service.url}/v1/audiobook/books",
            files={"file": ("book.epub", bookfiles.epub(), "application/epub+zip")},
            timeout=60,
        )
    assert response.status_code == 413 and response.json()["error"]["param"] == "size"


def test_the_command_line_stops_on_ctrl_c_and_goes_on_when_run_again(
    docker_client: DockerClient, espeak_image: str, tmp_path: Path
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "tales.epub").write_bytes(bookfiles.epub(chapters=LONG_CHAPTERS))
    out = writable(tmp_path / "out")
    readable(books)
    volumes: list[tuple[Path, str] | tuple[Path, str, str]] = [
        (books, "/books", "ro"),
        (out, "/out"),
    ]
    command = ["book", "/books/tales.epub", "-o", "/out", "--engine", "espeak"]
    container = docker_client.run(
        espeak_image,
        command,
        detach=True,
        name=f"audiobook-tts-book-{uuid.uuid4().hex[:8]}",
        volumes=volumes,
    )
    try:
        deadline = time.monotonic() + 300
        while not list((out / ".chapters").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        container.kill(signal="SIGINT")
        assert docker_client.container.wait(container) == 130, container.logs()
        assert "run the same command again to go on" in container.logs()
    finally:
        container.remove(force=True)
    made = {path: path.stat().st_mtime_ns for path in (out / ".chapters").glob("*.json")}
    # Chapter 1, and the one being finished when Ctrl-C came; chapters spoken and waiting
    # for a finishing thread are let go.
    assert 1 <= len(made) < 3 and not (out / "book.m4b").exists(), made
    # Run again: it goes on (a failure would raise here, with the command's output).
    docker_client.run(espeak_image, command, remove=True, volumes=volumes)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in made.items())
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "book.json",
        "book.m4b",
        "chapter-02.mp3",
        "chapter-03.mp3",
        "chapter-04.mp3",
    ]


def test_piper_reads_books_by_default_where_the_image_has_it(
    docker_client: DockerClient, neural_image: str, tmp_path: Path
) -> None:
    with book_service(docker_client, neural_image, tmp_path / "data", engines="") as service:
        job = submit(service.url, bookfiles.epub())
        assert job["options"]["engine"] == "piper"  # type: ignore[index]
        done = wait_done(service.url, job["id"])
        files = download(service.url, job["id"], ["book.json", "book.m4b"])
    assert done["meets_acx"] is True
    book = json.loads(files["book.json"])
    assert book["engine"] == "piper" and all(c["meets_acx"] for c in book["chapters"])
    (tmp_path / "book.m4b").write_bytes(files["book.m4b"])
    titles = [c["tags"]["title"] for c in ffprobe(tmp_path / "book.m4b")["chapters"]]  # type: ignore[attr-defined]
    assert titles == TITLES


def test_the_tiny_csm_model_reads_books_when_mounted(
    docker_client: DockerClient, neural_image: str, tmp_path: Path
) -> None:
    (tmp_path / "model").mkdir()
    model = readable(make_tiny_model(docker_client, neural_image, tmp_path / "model").parent)
    with running_service(
        docker_client,
        neural_image,
        "books-csm",
        path="/readyz",
        timeout=180.0,
        volumes=[(writable(tmp_path / "data"), "/data"), (model, "/models", "ro")],
        envs={"AUDIOBOOK_TTS_CSM_MODEL": "/models/tiny-csm"},
    ) as service:
        # Not listened to: every sentence of random weights would be retaken (the listener's
        # own checks hear the tiny csm).
        job = submit(service.url, bookfiles.epub(), check="false")
        assert job["options"]["engine"] == "csm"  # type: ignore[index]
        done = wait_done(service.url, job["id"])
        files = download(service.url, job["id"], ["book.json", "book.m4b"])
    book = json.loads(files["book.json"])
    assert book["engine"] == "csm" and [c["title"] for c in book["chapters"]] == TITLES
    assert done["files"] == ["book.json", "book.m4b", *FILES]
    (tmp_path / "book.m4b").write_bytes(files["book.m4b"])
    assert len(ffprobe(tmp_path / "book.m4b")["chapters"]) == 3  # type: ignore[arg-type]
