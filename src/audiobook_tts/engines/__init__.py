"""Speech engines, loaded by name: `espeak` (espeak-ng, offline), `piper` (Piper voices on
onnxruntime) and `csm` (Sesame CSM)."""

from __future__ import annotations

from audiobook_tts.audio import Samples
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines.base import Audio, Engine, EngineError, EngineRefusal, Voice
from audiobook_tts.engines.csm import check_model_dir
from audiobook_tts.engines.csmdevices import load_csm
from audiobook_tts.engines.csmsampling import Sampling
from audiobook_tts.engines.espeak import EspeakEngine
from audiobook_tts.engines.piper import PiperEngine

__all__ = [
    "Audio",
    "Engine",
    "EngineError",
    "EngineRefusal",
    "Samples",
    "Voice",
    "check_engine",
    "load_engine",
]


def check_engine(name: str, settings: ServiceSettings) -> None:
    """What can be checked before loading (in a second, at startup): a missing model file."""
    if name == "csm":
        check_model_dir(settings.csm_model)


def load_engine(name: str, settings: ServiceSettings | None = None) -> Engine:
    """Load one engine by name; unknown names are a configuration error."""
    settings = settings or ServiceSettings()
    if name == "espeak":
        return EspeakEngine()
    if name == "piper":
        return PiperEngine.load(settings.piper_voices)
    if name == "csm":
        try:
            sampling = Sampling(settings.csm_top_k, settings.csm_temperature)
        except ValueError as error:
            raise EngineError(f"AUDIOBOOK_TTS_CSM_TOP_K / _TEMPERATURE: {error}") from None
        return load_csm(
            settings.csm_model,
            settings.csm_devices,
            settings.device,
            settings.csm_voices,
            settings.csm_batch,
            settings.csm_decoder,
            sampling,
            settings.csm_compile,
        )
    raise ValueError(f"unknown engine {name!r}; known engines: espeak, piper, csm")
