"""The listener the service and the command line load: a recognizer, a quality model, and the
per-engine thresholds a sentence is judged by."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy.signal import resample_poly

from audiobook_tts.audio import Samples
from audiobook_tts.config import ServiceSettings
from audiobook_tts.listening.alignment import HeardSegment
from audiobook_tts.listening.quality import Dnsmos, QualityScorer
from audiobook_tts.listening.recognizer import (
    RATE,
    ListenerModelError,
    Recognizer,
    check_model_dir,
    default_model_dir,
)

# The highest word error rate a sentence may have and pass, per engine: chosen from the
# sentences of 5,000-character chapters each engine made, heard by Whisper base (docs/
# listening.md has the figures). espeak-ng's robotic voice is misheard more (Whisper hears
# "vile" as "mild"), so its bar sits higher; a dropped, repeated or garbled sentence scores
# 1.0 or more for any engine.
DEFAULT_MAX_WER: Mapping[str, float] = {"espeak": 0.5, "piper": 0.4, "csm": 0.4}
FALLBACK_MAX_WER = 0.5
# Tries of a flagged sentence by an engine that samples (the first take included).
DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True)
class CheckPolicy:
    """How sentences are judged: the word error rate over which a sentence is flagged, per
    engine, and how many takes a sampling engine gets."""

    max_wer: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_WER))
    attempts: int = DEFAULT_ATTEMPTS

    def threshold(self, engine: str) -> float:
        return self.max_wer.get(engine, FALLBACK_MAX_WER)


def to_listening_rate(samples: Samples, rate: int) -> Samples:
    """Mono float32 at the recognizer's 16 kHz."""
    if rate == RATE:
        return samples.astype(np.float32)
    divisor = np.gcd(RATE, rate)
    resampled: Samples = resample_poly(samples, RATE // divisor, rate // divisor).astype(np.float32)
    return resampled


class Hearing(Protocol):
    """What checking needs of a listener: to hear, to score, its bar, and its identity (in
    a checked chapter's key). `Listener` is the real one; unit tests have a stand-in."""

    policy: CheckPolicy
    identity: str

    def hear(self, samples: Samples, rate: int) -> tuple[HeardSegment, ...]: ...

    def score(self, samples: Samples, rate: int) -> Dnsmos: ...

    def facts(self) -> dict[str, str]: ...


class Listener:
    """Hears speech (Whisper) and scores how it sounds (DNSMOS); loaded once, used by every
    chapter, book and check."""

    def __init__(
        self, model: Path, policy: CheckPolicy | None = None, device: str = "auto"
    ) -> None:
        self.model = check_model_dir(model)
        self.policy = policy or CheckPolicy()
        self.recognizer = Recognizer(self.model, device)
        self.quality = QualityScorer()
        self.identity = _model_identity(self.model)

    def hear(self, samples: Samples, rate: int) -> tuple[HeardSegment, ...]:
        return self.recognizer.hear(to_listening_rate(samples, rate))

    def score(self, samples: Samples, rate: int) -> Dnsmos:
        return self.quality.score(to_listening_rate(samples, rate))

    def facts(self) -> dict[str, str]:
        """What /readyz and book.json say of the listener."""
        return {
            "model": str(self.model),
            "model_sha256": self.identity,
            "device": self.recognizer.facts.device,
            "compute_type": self.recognizer.facts.compute_type,
            "attempts": str(self.policy.attempts),
            "max_wer": ",".join(f"{name}={value}" for name, value in self.policy.max_wer.items()),
        }


def _model_identity(model: Path) -> str:
    """A short hash of the model's config and the size of its weights: enough to tell one
    model from another in a chapter's key without reading 145 MB at every start."""
    digest = hashlib.sha256((model / "config.json").read_bytes())
    digest.update(str((model / "model.bin").stat().st_size).encode())
    return digest.hexdigest()[:16]


def load_listener(settings: ServiceSettings) -> Listener | None:
    """The listener the settings ask for: None when off or (by default) when no model is
    installed; ListenerModelError, in one line, for a model set but unusable."""
    policy = CheckPolicy(
        {**DEFAULT_MAX_WER, **dict(settings.check_max_wer)}, settings.check_attempts
    )
    if settings.listener_model == "off":
        return None
    if settings.listener_model:
        try:
            return Listener(Path(settings.listener_model), policy, settings.listener_device)
        except ListenerModelError as error:
            raise ListenerModelError(f"AUDIOBOOK_TTS_LISTENER_MODEL: {error}") from None
    try:
        model = default_model_dir()
    except (ListenerModelError, OSError) as error:
        raise ListenerModelError(f"the packaged Whisper weights: {error}") from None
    return None if model is None else Listener(model, policy, settings.listener_device)
