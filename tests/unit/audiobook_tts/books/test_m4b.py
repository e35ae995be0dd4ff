"""A chapter's AAC encoded in parts: one file, exactly its samples long, seamed in pauses."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from audiobook_tts.books import m4b

RATE = 44100


def decoded(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), "r") as container:
        return np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        )


def test_a_chapter_aac_in_parts_decodes_to_its_samples_with_the_seam_in_its_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(m4b, "AAC_PART_SECONDS", 1.0)
    size = 300 * m4b.AAC_FRAME  # a chapter is whole AAC frames (master_chapter)
    t = np.arange(size) / RATE
    samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    pause = 150 * m4b.AAC_FRAME + 300  # a pause's middle: the cut moves back to a frame
    quiet = np.random.default_rng(0).standard_normal(20_000) * 0.001
    samples[pause - 10_000 : pause + 10_000] = quiet.astype(np.float32)
    whole = m4b.encode_aac(samples, RATE)
    parted = m4b.encode_aac(samples, RATE, [pause, size - 100])  # the second: too near the end
    assert parted != whole
    with av.open(io.BytesIO(parted), "r") as container:
        packets = [p for p in container.demux(audio=0) if p.size]
    # One priming packet (the first part's), then a packet a frame: two parts, joined.
    assert len(packets) == size // m4b.AAC_FRAME + 1
    assert sum(1 for p in packets if p.pts is not None and p.pts < 0) == 1
    one, two = decoded(whole), decoded(parted)
    assert one.size == two.size == size
    seam = slice(pause - 3_000, pause + 3_000)
    # The seam is heard at the level of the pause's room tone, not of the speech.
    assert float(np.abs(two[seam] - samples[seam]).max()) < 0.01
    assert float(np.abs(two[seam] - samples[seam]).max()) < 4 * float(
        np.abs(one[seam] - samples[seam]).max()
    )
    # Away from the cut, the parts decode as the whole does.
    away = slice(4 * m4b.AAC_FRAME, pause - 12_000)
    assert float(np.abs(two[away] - one[away]).max()) < 1e-6


def test_parts_are_cut_at_pauses_whole_frames_and_no_shorter_than_asked() -> None:
    from audiobook_tts.audio import part_bounds

    assert part_bounds(1000, [], 100) == [0, 1000]
    assert part_bounds(1000, [50, 130, 520, 950], 100, 16) == [0, 128, 512, 1000]
    assert part_bounds(1000, [930], 100) == [0, 1000]  # the last part would be too short
