"""Service settings, from AUDIOBOOK_TTS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    engines: tuple[str, ...] = ("espeak",)
    max_input_chars: int = 4096
    max_concurrency: int = 2
    # Requests waiting for a synthesis slot; beyond running + waiting, 429 at once.
    max_queue: int = 8
    max_body_bytes: int = 1_048_576

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get("AUDIOBOOK_TTS_HOST", defaults.host),
            port=int(env.get("AUDIOBOOK_TTS_PORT", defaults.port)),
            engines=tuple(
                name.strip()
                for name in env.get("AUDIOBOOK_TTS_ENGINES", ",".join(defaults.engines)).split(",")
                if name.strip()
            ),
            max_input_chars=int(env.get("AUDIOBOOK_TTS_MAX_INPUT", defaults.max_input_chars)),
            max_concurrency=int(env.get("AUDIOBOOK_TTS_MAX_CONCURRENCY", defaults.max_concurrency)),
            max_queue=int(env.get("AUDIOBOOK_TTS_MAX_QUEUE", defaults.max_queue)),
            max_body_bytes=int(env.get("AUDIOBOOK_TTS_MAX_BODY_BYTES", defaults.max_body_bytes)),
        )
