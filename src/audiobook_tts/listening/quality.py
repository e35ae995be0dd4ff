"""How the speech sounds: DNSMOS (Microsoft's non-intrusive MOS predictors) on onnxruntime.

The ONNX models come from the speechmos wheel (MIT); its Python code is not used, since it
imports librosa (and so numba and llvmlite, ~260 MB) for one mel spectrogram. The features
are computed here with numpy exactly as librosa 0.11 computes them (a unit test compares
them with values librosa wrote). P.808 is the overall MOS most papers quote; P.835 splits
it into the speech signal, the background and the overall impression.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from audiobook_tts.audio import Samples

RATE = 16000
WINDOW_SECONDS = 9.01
# A chapter is scored on at most this many windows spread over it: its MOS is a mean of
# windows anyway, and each costs two model runs.
MAX_WINDOWS = 6
N_FFT = 321
HOP = 160
N_MELS = 120


class QualityModelError(ValueError):
    """DNSMOS's models cannot be found or loaded."""


@dataclass(frozen=True)
class Dnsmos:
    """Predicted mean opinion scores, 1 (bad) to 5 (excellent)."""

    p808: float
    overall: float
    signal: float
    background: float

    def as_dict(self) -> dict[str, float]:
        return {
            "p808_mos": round(self.p808, 3),
            "ovrl_mos": round(self.overall, 3),
            "sig_mos": round(self.signal, 3),
            "bak_mos": round(self.background, 3),
        }


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=321, n_mels=120): Slaney-normalised triangles."""
    fft_hz = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), N_MELS + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    filters: np.ndarray = weights.astype(np.float32)
    return filters


def mel_features(audio: Samples) -> np.ndarray:
    """DNSMOS P.808's input: librosa's melspectrogram (centred, zero-padded frames, periodic
    Hann window) in dB from its maximum, floored 80 dB below, scaled as (dB + 40) / 40;
    frames by mel bands."""
    padded = np.pad(audio.astype(np.float32), N_FFT // 2)
    count = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0])
    )
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = power.astype(np.float32) @ mel_filters().T
    decibels = 10.0 * np.log10(np.maximum(mel, 1e-10))
    decibels -= 10.0 * np.log10(max(float(mel.max()), 1e-10))
    decibels = np.maximum(decibels, decibels.max() - 80.0)
    features: np.ndarray = ((decibels + 40.0) / 40.0).astype(np.float32)
    return features


def _models_dir() -> Path:
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise QualityModelError("speechmos (DNSMOS's models) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"
    if not (folder / "sig_bak_ovr.onnx").is_file() or not (folder / "model_v8.onnx").is_file():
        raise QualityModelError(f"{folder}: DNSMOS's models are missing")
    return folder


class QualityScorer:
    """DNSMOS P.808 and P.835 for 16 kHz mono speech."""

    def __init__(self, threads: int = 0) -> None:
        import onnxruntime

        folder = _models_dir()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.primary: Any = onnxruntime.InferenceSession(
            str(folder / "sig_bak_ovr.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.p808: Any = onnxruntime.InferenceSession(
            str(folder / "model_v8.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def score(self, samples: Samples) -> Dnsmos:
        """The mean over up to MAX_WINDOWS windows of 9.01 s spread evenly over `samples`
        (a shorter clip is repeated to one window's length, as DNSMOS's own code does)."""
        audio = np.clip(samples, -1.0, 1.0).astype(np.float32)
        length = int(WINDOW_SECONDS * RATE)
        if audio.size == 0:
            audio = np.zeros(length, dtype=np.float32)
        while audio.size < length:
            audio = np.concatenate([audio, audio])
        last = audio.size - length
        starts = sorted({round(last * k / max(1, MAX_WINDOWS - 1)) for k in range(MAX_WINDOWS)})
        if last < RATE * MAX_WINDOWS:  # short: windows one second apart, as DNSMOS hops
            starts = list(range(0, last + 1, RATE))
        scores = np.array([self._window(audio[start : start + length]) for start in starts])
        p808, signal, background, overall = scores.mean(axis=0)
        return Dnsmos(float(p808), float(overall), float(signal), float(background))

    def _window(self, window: np.ndarray) -> tuple[float, float, float, float]:
        p808 = self.p808.run(None, {"input_1": mel_features(window[:-HOP])[np.newaxis]})[0]
        raw_signal, raw_background, raw_overall = self.primary.run(
            None, {"input_1": window[np.newaxis]}
        )[0][0]
        # DNSMOS's published polynomial fits from raw to calibrated scores (not personalised).
        signal = np.polyval([-0.08397278, 1.22083953, 0.0052439], raw_signal)
        background = np.polyval([-0.13166888, 1.60915514, -0.39604546], raw_background)
        overall = np.polyval([-0.06766283, 1.11546468, 0.04602535], raw_overall)
        return float(p808[0][0]), float(signal), float(background), float(overall)
