"""Service settings, from AUDIOBOOK_TTS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENGINE_NAMES = ("espeak", "piper", "csm")
# Books default to the best engine loaded: a mounted CSM model, else a Piper voice, else espeak.
BOOK_ENGINE_PREFERENCE = ("csm", "piper", "espeak")
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")


class SettingsError(ValueError):
    """An AUDIOBOOK_TTS_* value that cannot be used; the message names it."""


def default_engines(env: Mapping[str, str]) -> str:
    """Without AUDIOBOOK_TTS_ENGINES: the engines the image holds (its build sets
    AUDIOBOOK_TTS_IMAGE_ENGINES), csm only when a model is mounted; else espeak."""
    held = [name.strip() for name in env.get("AUDIOBOOK_TTS_IMAGE_ENGINES", "").split(",")]
    usable = [
        name
        for name in held
        if name in ENGINE_NAMES and (name != "csm" or env.get("AUDIOBOOK_TTS_CSM_MODEL"))
    ]
    return ",".join(usable) or "espeak"


def book_engine(engines: tuple[str, ...]) -> str:
    """The engine a book is read with when none is asked for."""
    return next((name for name in BOOK_ENGINE_PREFERENCE if name in engines), engines[0])


def choose_book_engine(asked: str, loaded: tuple[str, ...]) -> str:
    """The engine a book is made with: the one asked for, when it is among `loaded`, else the
    best loaded. The API, the command line and every worker choose with this (SettingsError
    naming the engines there are, for one that is not)."""
    if asked and asked not in loaded:
        raise SettingsError(f"engine: {asked!r} is not loaded here; engines: {', '.join(loaded)}")
    return asked or book_engine(loaded)


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    # The engines to load, in order; the first is what `tts-1` and `tts-1-hd` mean.
    engines: tuple[str, ...] = ("espeak",)
    max_input_chars: int = 4096
    max_concurrency: int = 2
    # Requests waiting for a synthesis slot; beyond running + waiting, 429 at once.
    max_queue: int = 8
    max_body_bytes: int = 1_048_576
    # The csm engine: a mounted model directory, reference clips, and the device.
    csm_model: str = ""
    csm_voices: str = ""
    device: str = ""
    # Sentences of a chapter synthesised together by the csm engine: 0 picks by device
    # (64 on a GPU, 8 on the CPU).
    csm_batch: int = 0
    # fast: static caches, each frame a CUDA graph on a GPU; generate: transformers' generate.
    csm_decoder: str = "fast"
    # The piper engine: voices beside the installed ones (`<voice>.onnx` + `.onnx.json`).
    piper_voices: str = ""
    # Book jobs: their folder (a volume; empty: no book jobs), and the largest book accepted.
    data: str = ""
    max_book_bytes: int = 100 * 1024 * 1024
    # A Redis URL (redis://host:6379/0): book jobs go through a task queue on it, to any
    # number of `audiobook-tts worker`s sharing the data volume; empty: this process makes
    # them itself.
    queue: str = ""
    # Seconds a worker may go without a heartbeat before its task is given to another worker.
    queue_heartbeat: int = 60
    # A file of API keys (a key a line, or sha256:<hex>), or keys by hash (sha256:<hex>,...);
    # empty: the service is open to anyone who reaches its port.
    api_keys: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        engines = tuple(
            name.strip()
            for name in env.get("AUDIOBOOK_TTS_ENGINES", default_engines(env)).split(",")
            if name.strip()
        )
        unknown = [name for name in engines if name not in ENGINE_NAMES]
        if unknown or not engines:
            raise SettingsError(
                f"AUDIOBOOK_TTS_ENGINES: unknown engine(s) {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(ENGINE_NAMES)}"
            )

        def number(name: str, default: int) -> int:
            value = env.get(name, str(default))
            try:
                return int(value)
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a whole number") from None

        return cls(
            host=env.get("AUDIOBOOK_TTS_HOST", defaults.host),
            port=number("AUDIOBOOK_TTS_PORT", defaults.port),
            engines=engines,
            max_input_chars=number("AUDIOBOOK_TTS_MAX_INPUT", defaults.max_input_chars),
            max_concurrency=number("AUDIOBOOK_TTS_MAX_CONCURRENCY", defaults.max_concurrency),
            max_queue=number("AUDIOBOOK_TTS_MAX_QUEUE", defaults.max_queue),
            max_body_bytes=number("AUDIOBOOK_TTS_MAX_BODY_BYTES", defaults.max_body_bytes),
            csm_model=env.get("AUDIOBOOK_TTS_CSM_MODEL", ""),
            csm_voices=env.get("AUDIOBOOK_TTS_CSM_VOICES", ""),
            device=env.get("AUDIOBOOK_TTS_DEVICE", ""),
            csm_batch=number("AUDIOBOOK_TTS_CSM_BATCH", defaults.csm_batch),
            csm_decoder=env.get("AUDIOBOOK_TTS_CSM_DECODER", defaults.csm_decoder),
            piper_voices=env.get("AUDIOBOOK_TTS_PIPER_VOICES", ""),
            data=env.get("AUDIOBOOK_TTS_DATA", ""),
            max_book_bytes=number("AUDIOBOOK_TTS_MAX_BOOK_BYTES", defaults.max_book_bytes),
            queue=queue_url(env.get("AUDIOBOOK_TTS_QUEUE", "")),
            queue_heartbeat=number("AUDIOBOOK_TTS_QUEUE_HEARTBEAT", defaults.queue_heartbeat),
            api_keys=env.get("AUDIOBOOK_TTS_API_KEYS", ""),
        )


def queue_url(value: str) -> str:
    value = value.strip()
    if value and not value.startswith(QUEUE_SCHEMES):
        raise SettingsError(
            f"AUDIOBOOK_TTS_QUEUE={value!r}: a Redis URL (redis://host:6379/0) or nothing"
        )
    return value
