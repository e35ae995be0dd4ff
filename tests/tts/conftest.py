"""The built image, running, for the speech checks; a report and a picture at the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from imagebuild.plan.config import Settings
from tests.containers import built

ROOT = Path(__file__).resolve().parents[2]
REPORT_DIR = ROOT / "build-logs" / "tts"


class Findings:
    """What the checks measured, written to build-logs/tts/report.json."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"speech": [], "chapter": None, "performance": {}}

    def write(self) -> Path:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        samples = self.data.pop("_chapter_samples", None)
        if samples:
            self.data["picture"] = str(plot(samples, 44100, REPORT_DIR / "chapter.png"))
        path = REPORT_DIR / "report.json"
        path.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        return path


def plot(samples: list[float], rate: int, path: Path) -> Path:
    """Waveform and spectrogram of the first seconds of the mastered chapter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.asarray(samples)
    times = np.arange(data.size) / rate
    figure, (wave_axes, spectrum_axes) = plt.subplots(2, 1, figsize=(10, 6), dpi=100, sharex=True)
    wave_axes.plot(times, data, linewidth=0.3, color="#1c7ed6")
    wave_axes.axhline(10 ** (-3 / 20), color="#c92a2a", linewidth=0.6, linestyle="--")
    wave_axes.axhline(-(10 ** (-3 / 20)), color="#c92a2a", linewidth=0.6, linestyle="--")
    wave_axes.set_ylabel("amplitude")
    wave_axes.set_title("Mastered chapter (MP3, decoded): waveform with the -3 dBFS ceiling")
    spectrum_axes.specgram(data, NFFT=1024, Fs=rate, noverlap=512, cmap="magma")
    spectrum_axes.set_ylabel("Hz")
    spectrum_axes.set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


@pytest.fixture(scope="session")
def neural_image(settings: Settings, docker_client: DockerClient) -> str:
    """The image with every engine and the listener (nox -s tts builds it); csm loads only
    with a model."""
    reference = f"{settings.image}:cpu-espeak-piper-csm-listener"
    return built(docker_client, reference, "inv build --engines espeak,piper,csm,listener")


@pytest.fixture(scope="session")
def findings() -> Iterator[Findings]:
    collected = Findings()
    yield collected
    print(f"\ntts report: {collected.write()}")
