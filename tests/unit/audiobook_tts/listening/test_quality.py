"""DNSMOS's features computed as librosa computes them, and its scores from the real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiobook_tts.listening.quality import QualityScorer, mel_features

FIXTURES = Path(__file__).parent / "fixtures"


def test_mel_features_equal_librosas() -> None:
    # librosa-mel.npz: speechmos's audio_melspec (librosa 0.11.0) of this very signal.
    t = np.arange(8000) / 16000
    signal = (
        0.3 * np.sin(2 * np.pi * (200 + 1800 * t) * t) + 0.05 * np.sin(2 * np.pi * 3100 * t)
    ).astype(np.float32)
    expected = np.load(FIXTURES / "librosa-mel.npz")["mel"]
    assert mel_features(signal).shape == expected.shape
    np.testing.assert_allclose(mel_features(signal), expected, atol=1e-4)


def test_speech_scores_above_white_noise() -> None:
    import soundfile

    speech, rate = soundfile.read(FIXTURES / "april.flac", dtype="float32")
    assert rate == 16000
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, speech.size).astype(np.float32)
    scorer = QualityScorer()
    spoken, hiss = scorer.score(speech), scorer.score(noise)
    assert 1.0 <= hiss.p808 < spoken.p808 <= 5.0
    assert hiss.overall < spoken.overall
