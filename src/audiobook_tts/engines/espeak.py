"""espeak-ng: the offline, default engine.

The text always goes to espeak-ng on standard input and the voice is checked against the
engine's own list first, so no input can ever be read as an option or a file name.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cached_property

import numpy as np

from audiobook_tts.audio import Samples
from audiobook_tts.engines.base import Audio, EngineError, Voice

DEFAULT_WPM = 175
# espeak-ng's slowest rate; slower speech is made with longer gaps between words.
MIN_WPM = 80
# Above 450 wpm espeak-ng speeds up with libsonic; 4x the default is the API's maximum.
MAX_WPM = 700
# OpenAI's voice names, so existing clients work unchanged.
OPENAI_ALIASES = {
    "alloy": "en-us",
    "echo": "en-us+m3",
    "fable": "en-gb",
    "onyx": "en-us+m7",
    "nova": "en-us+f3",
    "shimmer": "en-us+f4",
}


def parse_voice_table(text: str) -> list[tuple[str, str, str, str]]:
    """(language code, gender, name, voice file) rows of `espeak-ng --voices`."""
    rows: list[tuple[str, str, str, str]] = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            language, age_gender, name, file = parts[1], parts[2], parts[3], parts[4]
            gender = age_gender.split("/")[-1] if "/" in age_gender else ""
            rows.append((language, gender, name.replace("_", " "), file))
    return rows


def decode_wav_stream(data: bytes) -> tuple[int, Samples]:
    """espeak-ng's --stdout WAV: its sizes are placeholders, so read up to the end."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng did not produce WAV data")
    position = 12
    sample_rate = 22050
    while position + 8 <= len(data):
        chunk, size = (
            data[position : position + 4],
            int.from_bytes(data[position + 4 : position + 8], "little"),
        )
        body = position + 8
        if chunk == b"fmt ":
            sample_rate = int.from_bytes(data[body + 4 : body + 8], "little")
        elif chunk == b"data":
            pcm = data[body:]
            pcm = pcm[: len(pcm) - len(pcm) % 2]
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            return sample_rate, samples
        position = body + size + (size % 2)
    raise EngineError("espeak-ng's WAV output has no data chunk")


def rate_options(speed: float) -> list[str]:
    """espeak-ng options for a speed factor (1.0 = 175 words a minute)."""
    wanted = DEFAULT_WPM * speed
    if wanted >= MIN_WPM:
        return ["-s", str(round(min(MAX_WPM, wanted)))]
    # -g is the gap between words in 10 ms units: each word takes 60/wanted seconds.
    gap = round((60.0 / wanted - 60.0 / MIN_WPM) * 100)
    return ["-s", str(MIN_WPM), "-g", str(gap)]


def run_espeak(
    binary: str, args: list[str], text: str | None = None, timeout: float = 30.0
) -> bytes:
    """espeak-ng with `text` on standard input (never an argument); its output, or an
    EngineError with its message."""
    try:
        result = subprocess.run(
            [binary, *args],
            input=text.encode("utf-8") if text is not None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise EngineError(f"espeak-ng took longer than {timeout:.0f}s") from error
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise EngineError(f"espeak-ng failed: {message or result.returncode}")
    return result.stdout


class EspeakEngine:
    name = "espeak"
    device = "cpu"

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("espeak-ng")
        if found is None:
            raise EngineError("espeak-ng is not installed")
        self.binary = found
        self.version = self._version()
        self._voice_files: dict[str, str] = {}

    def _run(self, args: list[str], text: str | None = None, timeout: float = 30.0) -> bytes:
        return run_espeak(self.binary, args, text, timeout)

    def _version(self) -> str:
        output = self._run(["--version"]).decode("utf-8", "replace")
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)", output)
        return match.group(1) if match else output.strip()

    @cached_property
    def _voice_table(self) -> dict[str, Voice]:
        table: dict[str, Voice] = {}
        output = self._run(["--voices"]).decode("utf-8", "replace")
        for language, gender, name, file in parse_voice_table(output):
            table[language] = Voice(
                id=language, engine=self.name, language=language, name=name, gender=gender
            )
            # espeak-ng lists codes it cannot load by name (chr-US-Qaaa-x-west); its file it can.
            self._voice_files[language] = file
        for alias, target in OPENAI_ALIASES.items():
            language = target.split("+")[0]
            if language in table:
                table[alias] = Voice(
                    id=alias, engine=self.name, language=language, name=f"{alias} ({target})"
                )
        return table

    def voices(self) -> list[Voice]:
        return sorted(self._voice_table.values(), key=lambda voice: voice.id)

    def has_voice(self, voice: str) -> bool:
        return voice in self._voice_table

    def facts(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "device": self.device}

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        if voice not in self._voice_table:
            raise EngineError(f"unknown voice {voice!r}")
        espeak_voice = OPENAI_ALIASES.get(voice) or self._voice_files.get(voice, voice)
        # -b 1: the input is UTF-8; text arrives on stdin, never as an argument.
        data = self._run(
            ["-b", "1", "-v", espeak_voice, *rate_options(speed), "--stdout"],
            text=text,
            timeout=30.0 + len(text) / 50.0,
        )
        rate, samples = decode_wav_stream(data)
        return Audio(samples, rate)
