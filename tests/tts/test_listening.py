"""The listener through the running image (`espeak,piper,csm,listener`): Whisper base and
DNSMOS hear what the engines say. Piper's and espeak's 5,000-character chapters pass under
their bars; a chapter that drops one sentence and says another twice is flagged at exactly
those two; DNSMOS orders piper above espeak above white noise (the tiny random csm is flagged
as unintelligible in test_csm.py, on its service); `audiobook-tts check` passes a book's own
chapters and fails them out of order or cut short, naming the chapter and the sentences. Real containers, engines
and models; no mocks."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from python_on_whales import DockerClient

from audiobook_tts.books.making import plan_chapters
from audiobook_tts.books.reading import read_book
from audiobook_tts.chapter import chunks
from tests import bookfiles
from tests.containers import Service, post_json, running_service
from tests.prose import ALICE

from .conftest import Findings
from .test_books import writable

pytestmark = [pytest.mark.docker, pytest.mark.tts]
# The bars the image holds (listening/listener.py): what a measured chapter must stay under.
MAX_WER = {"espeak": 0.5, "piper": 0.4}
# A book of plain English (the listener hears English: "Über Alles" read by an English voice
# is rightly flagged), its chapters ending in a short sentence that a cut removes.
ALICE_BOOK = (
    (
        "The Bank",
        "Alice was beginning to get very tired of sitting by her sister on the bank. Once or "
        "twice she had peeped into the book her sister was reading. It had no pictures or "
        "conversations in it.",
    ),
    (
        "The Rabbit",
        "Suddenly a white rabbit with pink eyes ran close by her. There was nothing so very "
        "remarkable in that. Then the rabbit took a watch out of its waistcoat pocket.",
    ),
    (
        "The Hole",
        "Burning with curiosity, she ran across the field after it. She was just in time to "
        "see it pop down a large rabbit hole. In another moment down went Alice after it.",
    ),
)


@pytest.fixture(scope="module")
def listening(
    docker_client: DockerClient, neural_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The image with its own engines (espeak, piper) and the listener, with a data volume."""
    data = writable(tmp_path_factory.mktemp("data"))
    with running_service(
        docker_client, neural_image, "listening", path="/readyz", volumes=[(data, "/data")]
    ) as started:
        yield started


@pytest.fixture(scope="module")
def chapters(listening: Service, findings: Findings) -> dict[str, dict[str, Any]]:
    """The same 5,000-character chapter by espeak and by piper, heard as it was made."""
    reports = {}
    for engine in ("espeak", "piper"):
        started = time.monotonic()
        response = httpx.post(
            f"{listening.url}/v1/audiobook/chapters",
            json={"model": engine, "input": ALICE, "voice": "alloy", "response_format": "mp3"},
            timeout=900,
        )
        seconds = time.monotonic() - started
        assert response.status_code == 200, response.text[:300]
        report: dict[str, Any] = json.loads(response.headers["x-audiobook-report"])
        reports[engine] = report
        check = report["check"]
        assert isinstance(check, dict)
        findings.data["performance"][f"{engine} 5,000-character chapter, heard"] = {
            "audio_seconds": report["duration_seconds"],
            "wall_seconds_with_listening": round(seconds, 1),
            "wer": check["wer"],
            "dnsmos": check["dnsmos"],
            "flagged": len(check["flagged"]),
        }
    return reports


@pytest.mark.parametrize("engine", ["espeak", "piper"])
def test_a_5000_character_chapter_passes_under_its_engines_bar(
    chapters: dict[str, dict[str, Any]], engine: str
) -> None:
    check = chapters[engine]["check"]
    assert isinstance(check, dict)
    assert check["engine"] == engine and check["max_wer"] == MAX_WER[engine]
    assert check["passed"] is True and check["flagged"] == [], check["flagged"]
    assert 0.0 <= check["wer"] < MAX_WER[engine]
    assert check["sentences"] == len(list(chunks(ALICE)))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def submit_check(
    url: str, book: tuple[str, bytes], audio: list[tuple[str, bytes]], **form: str
) -> httpx.Response:
    files = [("book", (book[0], book[1], "application/octet-stream"))]
    files += [("audio", (name, data, "application/octet-stream")) for name, data in audio]
    return httpx.post(f"{url}/v1/audiobook/checks", files=files, data=form, timeout=120)


def heard_report(url: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    location = f"{url}{response.headers['location']}"
    deadline = time.monotonic() + 600
    while (status := httpx.get(location, timeout=30).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "done", status
    report: dict[str, Any] = httpx.get(f"{location}/report", timeout=30).json()
    return report


def test_a_dropped_and_a_repeated_sentence_are_flagged_at_exactly_those_two(
    listening: Service, tmp_path: Path
) -> None:
    text = ALICE.split("\n\n")[0] + "\n\n" + ALICE.split("\n\n")[2]
    (tmp_path / "alice.txt").write_text(text, encoding="utf-8")
    sentences = [
        piece.text for piece in chunks(plan_chapters(read_book(tmp_path / "alice.txt"))[0].text)
    ]
    assert len(sentences) >= 8
    spoken = []
    for sentence in sentences:
        status, _, data = post_json(
            f"{listening.url}/v1/audio/speech",
            {"model": "piper", "input": sentence, "voice": "alloy", "response_format": "wav"},
            120,
        )
        assert status == 200, data[:200]
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
        spoken.append(np.concatenate([samples, np.zeros(rate // 2, dtype=np.float32)]))
    # An engine that drops the 3rd sentence and says the 6th twice.
    damaged = [part for index, part in enumerate(spoken) if index != 2]
    damaged.insert(5, spoken[5])
    audio = wav_bytes(np.concatenate(damaged), rate)
    report = heard_report(
        listening.url,
        submit_check(listening.url, ("alice.txt", text.encode()), [("ch.wav", audio)]),
    )
    (chapter,) = report["chapters"]
    flagged = {item["sentence"]: item["verdict"] for item in chapter["flagged"]}
    assert flagged == {3: "missing", 6: "repeated"}, chapter["flagged"]
    assert chapter["missing"] == [3] and chapter["repeated"] == [6]
    assert report["passed"] is False


def test_dnsmos_orders_piper_above_espeak_above_white_noise(
    listening: Service, chapters: dict[str, dict[str, Any]], findings: Findings
) -> None:
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 16000 * 20).astype(np.float32)
    report = heard_report(
        listening.url,
        submit_check(
            listening.url, ("alice.txt", ALICE.encode()), [("noise.wav", wav_bytes(noise, 16000))]
        ),
    )
    (chapter,) = report["chapters"]
    assert chapter["passed"] is False  # noise does not say the chapter
    mos = {
        engine: chapters[engine]["check"]["dnsmos"]["p808_mos"] for engine in ("piper", "espeak")
    }
    mos["white noise"] = chapter["dnsmos"]["p808_mos"]
    findings.data["performance"]["DNSMOS P.808 (same chapter)"] = mos
    assert mos["piper"] > mos["espeak"] > mos["white noise"], mos


def run_in_image(
    docker_client: DockerClient, image: str, command: list[str], folder: Path
) -> tuple[int, str]:
    """The command line in the image over `folder` (at /work): its exit code and output."""
    container = docker_client.run(
        image,
        command,
        detach=True,
        name=f"audiobook-tts-check-{uuid.uuid4().hex[:8]}",
        volumes=[(folder, "/work")],
        workdir="/work",
    )
    try:
        code = docker_client.container.wait(container)
        return code, container.logs()
    finally:
        container.remove(force=True)


def test_check_passes_a_books_own_chapters_and_fails_them_reordered_or_cut(
    docker_client: DockerClient, neural_image: str, tmp_path: Path
) -> None:
    work = writable(tmp_path / "work")
    (work / "tales.epub").write_bytes(bookfiles.epub(chapters=ALICE_BOOK))
    code, output = run_in_image(
        docker_client,
        neural_image,
        ["book", "tales.epub", "-o", "out", "--engine", "piper", "--no-check"],
        work,
    )
    assert code == 0, output
    files = ["out/chapter-02.mp3", "out/chapter-03.mp3", "out/chapter-04.mp3"]
    code, output = run_in_image(
        docker_client, neural_image, ["check", "tales.epub", *files, "--json", "ok.json"], work
    )
    assert code == 0, output
    report = json.loads((work / "ok.json").read_text())
    assert report["passed"] is True and len(report["chapters"]) == 3
    code, output = run_in_image(
        docker_client, neural_image, ["check", "tales.epub", "out/book.m4b"], work
    )
    assert code == 0, output  # the M4B's chapter markers split it the same way
    swapped = [files[1], files[0], files[2]]
    code, output = run_in_image(
        docker_client, neural_image, ["check", "tales.epub", *swapped], work
    )
    assert code == 3, output
    assert "says chapter 3" in output and "says chapter 2" in output, output  # files 2 and 3
    samples, rate = soundfile.read(work / files[1], dtype="float32")
    soundfile.write(work / "cut.wav", samples[: -5 * rate], rate)  # 2 s of tail, the last words
    code, output = run_in_image(
        docker_client,
        neural_image,
        ["check", "tales.epub", files[0], "cut.wav", files[2], "--json", "cut.json"],
        work,
    )
    assert code == 3, output
    cut = json.loads((work / "cut.json").read_text())
    failed = [chapter for chapter in cut["chapters"] if not chapter["passed"]]
    assert [chapter["chapter"] for chapter in failed] == [3], failed
    last = len(failed[0]["flagged"]) and failed[0]["flagged"][-1]
    assert last and last["sentence"] == failed[0]["sentences"], failed[0]
    assert f"chapter 3 sentence {last['sentence']}" in output


def test_a_broken_listener_model_stops_the_service_in_one_line(
    docker_client: DockerClient, neural_image: str
) -> None:
    container = docker_client.run(
        neural_image,
        detach=True,
        envs={"AUDIOBOOK_TTS_LISTENER_MODEL": "/nonexistent"},
        name=f"audiobook-tts-broken-listener-{uuid.uuid4().hex[:8]}",
    )
    try:
        assert docker_client.container.wait(container) == 2
        lines = [line for line in container.logs().splitlines() if line.startswith("error:")]
        assert lines == [
            "error: the listener cannot start: AUDIOBOOK_TTS_LISTENER_MODEL: /nonexistent is "
            "not a directory"
        ]
    finally:
        container.remove(force=True)


def test_audio_over_the_limit_or_silent_is_refused_with_nothing_written(
    docker_client: DockerClient, neural_image: str, tmp_path: Path
) -> None:
    data = writable(tmp_path / "data")
    with running_service(
        docker_client,
        neural_image,
        "listening-limits",
        path="/readyz",
        volumes=[(data, "/data")],
        envs={"AUDIOBOOK_TTS_MAX_CHECK_SECONDS": "5"},
    ) as service:
        speech = np.random.default_rng(1).uniform(-0.3, 0.3, 16000 * 6).astype(np.float32)
        long = submit_check(
            service.url, ("a.txt", b"Some words here."), [("a.wav", wav_bytes(speech, 16000))]
        )
        assert long.status_code == 413 and "AUDIOBOOK_TTS_MAX_CHECK_SECONDS" in long.text
        silent = submit_check(
            service.url,
            ("a.txt", b"Some words here."),
            [("a.wav", wav_bytes(np.zeros(16000, dtype=np.float32), 16000))],
        )
        assert silent.status_code == 400 and silent.json()["error"]["param"] == "no_speech"
    assert not any(path for path in (data / "checks").iterdir() if path.is_dir())
