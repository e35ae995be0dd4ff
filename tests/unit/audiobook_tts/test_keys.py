"""API keys: a key file or hashes, 401 in OpenAI's shape, each key's jobs its own (404 for
another's), the open service's one warning; and a 413 that urllib reads."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from audiobook_tts.app import create_app
from audiobook_tts.config import ServiceSettings, SettingsError
from audiobook_tts.keys import KeyRing, key_hash
from tests import bookfiles
from tests.unit.audiobook_tts.books.test_books import BOOK_TONE, submit, wait
from tests.unit.audiobook_tts.conftest import ToneEngine
from tests.unit.audiobook_tts.listening.fakes import CodedEngine, CodedListener
from tests.unit.audiobook_tts.listening.test_bookcheck import BOOK, planned, spoken, wav

KEY_A, KEY_B = "sk-alpha-0123456789", "sk-beta-9876543210"


def keyed(data: Path, keys: str) -> TestClient:
    settings = ServiceSettings(engines=("tone",), data=str(data), api_keys=keys)
    return TestClient(create_app(settings, loader=lambda name, _: ToneEngine(BOOK_TONE)))


def test_keys_come_from_a_file_or_by_hash(tmp_path: Path) -> None:
    hashed = "sha256:" + hashlib.sha256(KEY_B.encode()).hexdigest()
    (tmp_path / "keys").write_text(f"# team a\n{KEY_A}\n{hashed}  # team b\n\n")
    ring = KeyRing.from_setting(str(tmp_path / "keys"))
    assert ring is not None
    assert ring.match(KEY_A) == key_hash(KEY_A) and ring.match(KEY_B) == key_hash(KEY_B)
    assert ring.match("sk-other") is None and ring.match("") is None
    assert KeyRing.from_setting("") is None
    assert KeyRing.from_setting(hashed) == KeyRing((key_hash(KEY_B),))
    with pytest.raises(SettingsError, match="keys by hash"):
        KeyRing.from_setting(f"{hashed},{KEY_A}")  # a key in clear in the environment
    with pytest.raises(SettingsError, match="cannot read the key file"):
        KeyRing.from_setting(str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(SettingsError, match="no keys"):
        KeyRing.from_setting(str(tmp_path / "empty"))


def test_each_key_sees_its_own_jobs_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keys").write_text(f"{KEY_A}\n{KEY_B}\n")
    with keyed(tmp_path / "data", str(tmp_path / "keys")) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        refused = client.get("/v1/voices")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["type"] == "invalid_request_error"
        wrong = client.get("/v1/voices", headers={"Authorization": "Bearer sk-wrong"})
        assert wrong.status_code == 401 and "sk-wrong" not in wrong.text
        a = {"Authorization": f"Bearer {KEY_A}"}
        b = {"Authorization": f"Bearer {KEY_B}"}
        assert client.get("/v1/voices", headers=a).status_code == 200
        client.headers.update(a)
        job = submit(client, bookfiles.epub())
        done = wait(client, job["id"])
        assert done["status"] == "done" and "owner" not in done
        client.headers.update(b)
        assert client.get("/v1/audiobook/jobs").json() == {"jobs": []}
        for path in ("", "/files/book.m4b", "/files/nothing.mp3"):
            response = client.get(f"/v1/audiobook/jobs/{job['id']}{path}")
            assert response.status_code == 404, (path, response.text)
        assert client.delete(f"/v1/audiobook/jobs/{job['id']}").status_code == 404
        client.headers.update(a)
        assert [j["id"] for j in client.get("/v1/audiobook/jobs").json()["jobs"]] == [job["id"]]
        assert client.get(f"/v1/audiobook/jobs/{job['id']}/files/book.m4b").status_code == 200
    said = capsys.readouterr()
    assert KEY_A not in said.out + said.err and KEY_B not in said.out + said.err
    assert "AUDIOBOOK_TTS_API_KEYS is not set" not in said.err


def test_an_open_service_says_so_once_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with keyed(tmp_path / "data", "") as client:
        assert client.get("/v1/voices").status_code == 200
        assert client.get("/v1/audiobook/jobs").status_code == 200
    assert capsys.readouterr().err.count("AUDIOBOOK_TTS_API_KEYS is not set") == 1


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app on a real HTTP server on a loopback port (uvicorn, as in the image)."""
    app = create_app(
        ServiceSettings(engines=("tone",)), loader=lambda name, _: ToneEngine(BOOK_TONE)
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_urllib_reads_the_413_of_a_12_mib_body(served: str) -> None:
    body = b'{"model": "tts-1", "voice": "alloy", "input": "' + b"a" * (12 * 1024 * 1024) + b'"}'
    request = urllib.request.Request(
        f"{served}/v1/audio/speech", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    assert b"request body over" in refused.value.read()


def test_a_check_job_is_its_key_s_alone(tmp_path: Path) -> None:
    engine = CodedEngine()
    audio = [wav(spoken(engine, chapter)) for chapter in planned(tmp_path)]
    (tmp_path / "keys").write_text(f"{KEY_A}\n{KEY_B}\n")
    settings = ServiceSettings(
        engines=("coded",), data=str(tmp_path / "data"), api_keys=str(tmp_path / "keys")
    )
    app = create_app(settings, loader=lambda *_: engine, listener=CodedListener(engine))
    a = {"Authorization": f"Bearer {KEY_A}"}
    b = {"Authorization": f"Bearer {KEY_B}"}
    with TestClient(app) as client:
        submitted = client.post(
            "/v1/audiobook/checks",
            files=[
                ("book", ("river.md", BOOK.encode(), "text/markdown")),
                *[("audio", (f"{n}.wav", data, "audio/wav")) for n, data in enumerate(audio)],
            ],
            headers=a,
        )
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        deadline = time.monotonic() + 60
        while client.get(location, headers=a).json()["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.get(f"{location}/report", headers=a).status_code == 200
        for path in (location, f"{location}/report"):
            assert client.get(path, headers=b).status_code == 404, path
        assert client.delete(location, headers=b).status_code == 404
        assert client.get("/v1/audiobook/checks", headers=b).json() == {"checks": []}
        mine = client.get("/v1/audiobook/checks", headers=a).json()["checks"]
        assert [check["id"] for check in mine] == [submitted.json()["id"]]
        assert "owner" not in mine[0]
