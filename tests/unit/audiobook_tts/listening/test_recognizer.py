"""The recognizer's model: the wheels' parts joined and checked, bad directories refused in one
line, and a committed espeak-ng sentence heard as its words."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import soundfile

from audiobook_tts.config import ServiceSettings
from audiobook_tts.listening.alignment import score_sentences
from audiobook_tts.listening.listener import Listener, load_listener
from audiobook_tts.listening.recognizer import (
    PACKAGED_SHA256,
    ListenerModelError,
    check_model_dir,
    default_model_dir,
    join_packaged_model,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_packaged_weights_join_to_the_pinned_hash(tmp_path: Path) -> None:
    joined = join_packaged_model(tmp_path / "whisper-base")
    assert hashlib.sha256((joined / "model.bin").read_bytes()).hexdigest() == PACKAGED_SHA256
    assert check_model_dir(joined) == joined
    assert not (tmp_path / "whisper-base.part").exists()


def test_a_directory_that_is_not_a_model_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ListenerModelError, match="is not a directory"):
        check_model_dir(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ListenerModelError, match=r"no model\.bin, tokenizer\.json") as error:
        check_model_dir(tmp_path)
    assert "\n" not in str(error.value)
    broken = ServiceSettings(listener_model=str(tmp_path))
    with pytest.raises(ListenerModelError, match=r"^AUDIOBOOK_TTS_LISTENER_MODEL: "):
        load_listener(broken)


def test_off_means_no_listener() -> None:
    assert load_listener(ServiceSettings(listener_model="off")) is None


def test_a_spoken_sentence_is_heard_as_its_words() -> None:
    model = default_model_dir()
    assert model is not None  # the listener lock is installed for the tests
    speech, rate = soundfile.read(FIXTURES / "april.flac", dtype="float32")
    listener = Listener(model, device="cpu")
    heard = listener.hear(speech, rate)
    (score,) = score_sentences(
        ["It was a bright cold day in April, and the clocks were striking thirteen."], heard, 0.5
    ).sentences
    assert score.wer <= 0.2, score.heard
    assert heard[0].words and heard[0].words[0].start < 1.0  # word timestamps
