"""The HTTP API's contract, with a stand-in engine (the real espeak-ng runs in the smoke tests)."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from audiobook_tts.app import create_app
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines.espeak import decode_wav_stream, parse_voice_table
from tests.unit.audiobook_tts.conftest import ToneEngine


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(ServiceSettings(engines=("tone",)), loader=lambda name, _: ToneEngine())
    with TestClient(app) as test_client:
        yield test_client


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["engines"] == [{"name": "tone", "version": "1", "device": "cpu"}]


def test_voices_are_listed_on_both_paths(client: TestClient) -> None:
    for path in ("/v1/voices", "/v1/audio/voices"):
        assert [v["id"] for v in client.get(path).json()["voices"]] == ["alloy"]


def test_speech_returns_wav_of_the_engine_rate(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hello there.", "voice": "alloy"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as handle:
        assert handle.getframerate() == 16000 and handle.getnchannels() == 1
        assert handle.getnframes() > 0


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": "   \n\t"}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"input": "hi", "speed": 0.1}, "speed"),
        ({"input": "hi", "speed": 4.5}, "speed"),
        ({"input": "hi", "response_format": "aiff"}, "response_format"),
        ({"voice": "alloy"}, "input"),
    ],
)
def test_bad_requests_are_400_with_a_json_error(
    client: TestClient, payload: dict[str, object], param: str
) -> None:
    response = client.post("/v1/audio/speech", json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert client.get("/healthz").status_code == 200


def test_unknown_voice_lists_the_valid_ones(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "hi", "voice": "nobody"})
    assert response.status_code == 400
    assert "valid voices: alloy" in response.json()["error"]["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def test_espeak_voice_table_and_streamed_wav_parse() -> None:
    table = (
        "Pty Language       Age/Gender VoiceName          File          Other Languages\n"
        " 2  en-gb           --/M      English_(Great_Britain) gmw/en   (en 2)\n"
    )
    assert parse_voice_table(table) == [("en-gb", "M", "English (Great Britain)", "gmw/en")]
    header = (
        b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x22\x56\x00\x00"
        b"\x44\xac\x00\x00\x02\x00\x10\x00data\xff\xff\xff\x7f"
    )
    rate, samples = decode_wav_stream(header + np.array([0, 16384], dtype="<i2").tobytes())
    assert rate == 22050
    assert samples.tolist() == [0.0, 0.5]


def test_espeak_rate_options_cover_the_whole_speed_range() -> None:
    from audiobook_tts.engines.espeak import rate_options

    assert rate_options(1.0) == ["-s", "175"]
    assert rate_options(2.0) == ["-s", "350"]
    assert rate_options(4.0) == ["-s", "700"]
    slow = rate_options(0.25)
    assert slow[:2] == ["-s", "80"] and slow[2] == "-g" and 55 <= int(slow[3]) <= 70


def test_noise_floor_is_the_quietest_half_second_and_mastering_meets_acx() -> None:
    from audiobook_tts.audio import measure, noise_floor
    from audiobook_tts.chapter import master

    rate = 8000
    quiet = np.full(rate, 0.001, dtype=np.float32)
    loud = np.full(rate, 0.5, dtype=np.float32)
    assert abs(noise_floor(np.concatenate([loud, quiet, loud]), rate) - 0.001) < 1e-6
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(rate * 5) * 0.05).astype(np.float32)
    speech[1000] = 0.99  # one spike far above the rest
    levels = measure(master(speech, rate), rate)
    assert -23 <= levels.rms_db <= -18 and levels.peak_dbfs <= -3.0


def test_chapters_split_into_sentences_with_paragraph_pauses() -> None:
    from audiobook_tts.chapter import PARAGRAPH_PAUSE, SENTENCE_PAUSE, chunks

    text = "Dr. Smith arrived at 5 p.m. He sat down.\n\nA new paragraph starts here. It ends."
    pieces = list(chunks(text))
    assert [p.text for p in pieces] == [
        "Dr. Smith arrived at 5 p.m.",
        "He sat down.",
        "A new paragraph starts here.",
        "It ends.",
    ]
    assert [p.pause_after for p in pieces] == [SENTENCE_PAUSE, PARAGRAPH_PAUSE, SENTENCE_PAUSE, 0.0]
    assert list(chunks("  \n\n  ")) == []


STORY = "The rain came. The river rose.\n\nBy morning the bridge was gone."


def test_streamed_pcm_comes_sentence_by_sentence_and_decodes(client: TestClient) -> None:
    payload = {"input": STORY, "voice": "alloy", "response_format": "pcm", "stream": True}
    with client.stream("POST", "/v1/audio/speech", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/pcm"
        assert response.headers["x-sample-rate"] == "24000"
        pieces = [piece for piece in response.iter_bytes() if piece]
    assert len(pieces) == 3  # one per sentence, each sent when it was made
    samples = np.frombuffer(b"".join(pieces), dtype="<i2")
    assert samples.size > 24000 and np.abs(samples).max() > 8000
    # The admission was given back when the stream ended.
    assert client.app.state.synthesis.admission.admitted == 0  # type: ignore[attr-defined]


def test_streamed_wav_has_a_header_first_and_reads_as_one_file(client: TestClient) -> None:
    payload = {"input": STORY, "voice": "alloy", "response_format": "wav", "stream": True}
    with client.stream("POST", "/v1/audio/speech", json=payload) as response:
        pieces = [piece for piece in response.iter_bytes() if piece]
    assert pieces[0].startswith(b"RIFF") and len(pieces) == 4  # header, then 3 sentences
    samples, rate = soundfile.read(io.BytesIO(b"".join(pieces)), dtype="float32")
    assert rate == 16000 and samples.size == sum(len(piece) for piece in pieces[1:]) // 2


def test_streamed_mp3_comes_in_pieces_that_join_into_one_file(client: TestClient) -> None:
    payload = {"input": STORY, "voice": "alloy", "response_format": "mp3", "stream": True}
    with client.stream("POST", "/v1/audio/speech", json=payload) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        pieces = [piece for piece in response.iter_bytes() if piece]
    assert len(pieces) >= 3  # frames leave as each sentence is encoded, the last at the end
    samples, rate = soundfile.read(io.BytesIO(b"".join(pieces)), dtype="float32")
    as_wav = client.post("/v1/audio/speech", json={**payload, "response_format": "wav"})
    whole, whole_rate = soundfile.read(io.BytesIO(as_wav.content), dtype="float32")
    assert rate == whole_rate == 16000 and np.abs(samples).max() > 0.2
    # The same stream as WAV, give or take the encoder's delay and padding (a few frames).
    assert abs(samples.size - whole.size) < 4 * 1152


def test_streaming_refuses_before_any_audio_and_sends_flac_or_opus_whole(
    client: TestClient,
) -> None:
    payload = {"input": STORY, "voice": "alloy", "response_format": "opus", "stream": True}
    whole = client.post("/v1/audio/speech", json=payload)  # a container written whole
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("audio/ogg")
    samples, rate = soundfile.read(io.BytesIO(whole.content), dtype="float32")
    assert rate == 48000 and samples.size > rate
    unknown = client.post(
        "/v1/audio/speech", json={**payload, "response_format": "pcm", "voice": "x"}
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "voice"
    assert client.app.state.synthesis.admission.admitted == 0  # type: ignore[attr-defined]


def test_stream_must_be_a_boolean_not_a_number(client: TestClient) -> None:
    payload = {"input": STORY, "voice": "alloy", "response_format": "pcm", "stream": 0}
    response = client.post("/v1/audio/speech", json=payload)
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


def test_a_bad_lexicon_entry_is_a_400_naming_it(client: TestClient) -> None:
    def chapter(word: str, say: str) -> Any:
        lexicon = [{"word": word, "say": say}]
        return client.post(
            "/v1/audiobook/chapters",
            json={"input": STORY, "lexicon": lexicon, "response_format": "wav"},
        )

    response = chapter("Cholmondeley", "[[tS'Vmli")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "lexicon.0.say"  # refused by the schema, which says why
    for word, say in (("  ", "x"), ("word", ""), ("a\tb", "x"), ("word", "say [it]")):
        refused = chapter(word, say)
        assert refused.status_code == 400, (word, say)
        assert refused.json()["error"]["param"].startswith("lexicon.0."), (word, say)
    assert chapter("rain", "drizzle").status_code == 200
