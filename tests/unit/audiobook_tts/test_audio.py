"""Full-scale audio in every format decodes with no sample over full scale: true peaks are
limited to -1 dBTP before lossy encoding, streamed and whole alike."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from audiobook_tts.audio import (
    FORMATS,
    decoded_peak,
    encode,
    limit_true_peak,
    true_peaks,
)
from audiobook_tts.streaming import Encoder

RATE = 24000
CEILING = 10 ** (-1 / 20)


def full_scale() -> dict[str, np.ndarray]:
    time = np.arange(RATE * 2) / RATE
    return {
        # What the tiny random csm makes: dense noise at full scale.
        "noise": np.random.default_rng(0).uniform(-1, 1, time.size).astype(np.float32),
        "square": np.sign(np.sin(2 * np.pi * 220 * time)).astype(np.float32),
        "sine": np.sin(2 * np.pi * 440 * time).astype(np.float32),
    }


def peak(data: bytes, response_format: str) -> float:
    if response_format == "pcm":
        return float(np.abs(np.frombuffer(data, "<i2") / 32768.0).max())
    if response_format in ("wav", "flac"):
        samples, _ = soundfile.read(io.BytesIO(data), dtype="float32")
        return float(np.abs(samples).max())
    return decoded_peak(data)


@pytest.mark.parametrize("response_format", FORMATS)
@pytest.mark.parametrize("name", ["noise", "square", "sine"])
def test_full_scale_input_decodes_under_full_scale(response_format: str, name: str) -> None:
    assert peak(encode(full_scale()[name], RATE, response_format), response_format) <= 1.0


@pytest.mark.parametrize("name", ["noise", "square", "sine"])
def test_a_streamed_mp3_is_limited_chunk_by_chunk(name: str) -> None:
    samples = full_scale()[name]
    encoder = Encoder("mp3", RATE)
    data = encoder.start()
    for start in range(0, samples.size, RATE // 5):
        data += encoder.write(samples[start : start + RATE // 5])
    data += encoder.finish()
    assert decoded_peak(data) <= CEILING + 0.01  # MP3 keeps -1 dBTP within a hair


def test_the_limiter_holds_true_peaks_at_the_ceiling_and_leaves_quiet_audio_alone() -> None:
    loud = full_scale()["noise"]
    limited = limit_true_peak(loud, RATE)
    assert float(true_peaks(limited).max()) <= CEILING + 1e-3
    quiet = (loud * 0.5).astype(np.float32)  # a mastered chapter peaks at -4 dBFS or less
    assert limit_true_peak(quiet, RATE) is quiet


def test_a_long_mp3_is_encoded_in_parts_cut_at_pauses_into_one_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import av

    from audiobook_tts import audio

    monkeypatch.setattr(audio, "MP3_PART_SECONDS", 1.0)
    rate = 44100
    t = np.arange(4 * rate) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    pauses = [int(1.5 * rate), int(2.2 * rate), int(3.5 * rate)]
    for pause in pauses:
        samples[pause - 2000 : pause + 2000] = 0.0
    whole = audio.encode_mp3_frames(samples, rate)
    # Without a cut that leaves a second on each side: one part.
    assert audio.encode_mp3_parts(samples, rate, [int(3.5 * rate)]) == whole
    joined = audio.encode_mp3_parts(samples, rate, pauses)  # cut at 1.5 s only (then 2.5 s left)
    first = audio.encode_mp3_frames(samples[: int(1.5 * rate)], rate)
    # Two parts' bare frames, one after the other: no tag, no Info frame at the cut.
    assert joined == first + audio.encode_mp3_frames(samples[int(1.5 * rate) :], rate)
    assert joined[:2] == b"\xff\xfb" and b"Info" not in joined and b"Xing" not in joined
    with av.open(io.BytesIO(whole), "r") as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.codec_context.bit_rate) == (rate, audio.MP3_BITRATE)
    with av.open(io.BytesIO(joined), "r") as container:
        decoded = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    # One stream: every frame decodes; the cut adds its part's delay and padding, no more.
    assert samples.size <= decoded.size <= samples.size + 2 * 2 * 1152
    assert float(np.abs(decoded).max()) <= 10 ** (-1 / 20) + 0.05
    read, read_rate = soundfile.read(io.BytesIO(joined), dtype="float32")
    assert read_rate == rate and abs(read.size - decoded.size) <= 2 * 1152


def test_the_limiter_worked_out_around_its_peaks_is_the_limiter_over_the_whole() -> None:
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    from audiobook_tts.audio import limit

    def over_the_whole(samples: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
        gain = np.minimum(1.0, ceiling / np.maximum(np.abs(samples).astype(np.float64), 1e-9))
        window = max(1, int(0.005 * rate))
        gain = uniform_filter1d(minimum_filter1d(gain, size=2 * window + 1), size=window)
        limited: np.ndarray = np.clip(samples * gain, -ceiling, ceiling).astype(np.float32)
        return limited

    rng = np.random.default_rng(5)
    for size, rate in ((50, 8000), (20_000, 24000), (200_000, 44100)):
        samples = (rng.laplace(size=size) * 0.15).astype(np.float32)
        samples[0] = samples[-1] = 0.95  # peaks at both ends: the filters' edges
        limited = limit(samples, rate, 0.7)
        assert float(np.abs(limited - over_the_whole(samples, rate, 0.7)).max()) < 1e-6
        assert float(np.abs(limited).max()) <= 0.7
    quiet = (rng.laplace(size=1000) * 0.01).astype(np.float32)
    assert np.array_equal(limit(quiet, 8000, 0.7), quiet)  # no peak over: untouched
