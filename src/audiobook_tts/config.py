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
    # How the csm engine picks each token: top-k with temperature, as CSM's makers decode
    # (50 and 0.9), seeded per sentence; temperature 0 is greedy.
    csm_top_k: int = 50
    # The csm engine's sampling temperature (0.9, its makers'); 0: greedy decoding.
    csm_temperature: float = 0.9
    # GPUs the csm engine runs on, one model each, a book's batches dealt across them
    # (comma-separated, e.g. "cuda:0,cuda:1"); empty: every visible GPU (or AUDIOBOOK_TTS_DEVICE).
    csm_devices: str = ""
    # torch.compile of each decoder layer's parts on a GPU (compiled once at load).
    csm_compile: bool = True
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
    # The listener (chapters and books heard as they are made, and `check`): a faster-whisper
    # model directory; empty: the image's Whisper base (or the installed wheels') where
    # present, else no listener; "off": none.
    listener_model: str = ""
    # Where the recognizer runs: auto (a GPU when CTranslate2 sees one), cpu or cuda.
    listener_device: str = "auto"
    # The word error rate over which a sentence is flagged, per engine ("espeak=0.5,piper=0.4");
    # engines not named keep their measured defaults.
    check_max_wer: tuple[tuple[str, float], ...] = ()
    # Takes of a flagged sentence by an engine that samples, the first included.
    check_attempts: int = 3
    # The longest audio `check` hears, in seconds (all files of one check together).
    max_check_seconds: int = 24 * 3600

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

        def decimal(name: str, default: float) -> float:
            value = env.get(name, str(default))
            try:
                return float(value)
            except ValueError:
                raise SettingsError(f"{name}={value!r} is not a number") from None

        def switch(name: str, default: bool) -> bool:
            value = env.get(name, "1" if default else "0").strip().lower()
            if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise SettingsError(f"{name}={value!r}: use 1 or 0")
            return value in ("1", "true", "yes", "on")

        attempts = number("AUDIOBOOK_TTS_CHECK_ATTEMPTS", defaults.check_attempts)
        if not 1 <= attempts <= 10:
            raise SettingsError(f"AUDIOBOOK_TTS_CHECK_ATTEMPTS={attempts}: use 1 to 10")
        device = env.get("AUDIOBOOK_TTS_LISTENER_DEVICE", defaults.listener_device)
        if device not in ("auto", "cpu", "cuda"):
            raise SettingsError(f"AUDIOBOOK_TTS_LISTENER_DEVICE={device!r}: use auto, cpu or cuda")
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
            csm_top_k=number("AUDIOBOOK_TTS_CSM_TOP_K", defaults.csm_top_k),
            csm_temperature=decimal("AUDIOBOOK_TTS_CSM_TEMPERATURE", defaults.csm_temperature),
            csm_devices=env.get("AUDIOBOOK_TTS_CSM_DEVICES", defaults.csm_devices),
            csm_compile=switch("AUDIOBOOK_TTS_CSM_COMPILE", defaults.csm_compile),
            piper_voices=env.get("AUDIOBOOK_TTS_PIPER_VOICES", ""),
            data=env.get("AUDIOBOOK_TTS_DATA", ""),
            max_book_bytes=number("AUDIOBOOK_TTS_MAX_BOOK_BYTES", defaults.max_book_bytes),
            queue=queue_url(env.get("AUDIOBOOK_TTS_QUEUE", "")),
            queue_heartbeat=number("AUDIOBOOK_TTS_QUEUE_HEARTBEAT", defaults.queue_heartbeat),
            api_keys=env.get("AUDIOBOOK_TTS_API_KEYS", ""),
            listener_model=env.get("AUDIOBOOK_TTS_LISTENER_MODEL", ""),
            listener_device=device,
            check_max_wer=parse_max_wer(env.get("AUDIOBOOK_TTS_CHECK_MAX_WER", "")),
            check_attempts=attempts,
            max_check_seconds=number("AUDIOBOOK_TTS_MAX_CHECK_SECONDS", defaults.max_check_seconds),
        )


def queue_url(value: str) -> str:
    value = value.strip()
    if value and not value.startswith(QUEUE_SCHEMES):
        raise SettingsError(
            f"AUDIOBOOK_TTS_QUEUE={value!r}: a Redis URL (redis://host:6379/0) or nothing"
        )
    return value


def parse_max_wer(text: str) -> tuple[tuple[str, float], ...]:
    """`espeak=0.5,piper=0.4` -> (("espeak", 0.5), ("piper", 0.4)); each a known engine and a
    rate from 0 to 10 (a sentence said twice has a rate of 1 or more)."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if name not in ENGINE_NAMES or not 0.0 <= rate <= 10.0:
            raise SettingsError(
                f"AUDIOBOOK_TTS_CHECK_MAX_WER: {item!r}: use ENGINE=RATE pairs, e.g. "
                f"espeak=0.5,piper=0.4 (engines: {', '.join(ENGINE_NAMES)}; rates 0 to 10)"
            )
        pairs.append((name, rate))
    return tuple(pairs)
