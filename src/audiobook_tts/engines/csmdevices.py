"""The csm engine on several GPUs: one model and engine per GPU, each batch dealt across them.

`AUDIOBOOK_TTS_CSM_DEVICES` names the GPUs (default: every visible one). A batch of
sentences (a book's, through `synthesize_all` and `make_book`, which need no change) is cut
into one contiguous part a GPU, by the order given (sorted by length, so each part's
sentences are alike), and the parts are decoded at once, a thread a GPU. A single sentence or
stream goes to the GPUs in turn. Each sentence's seed comes from its text (or the caller), so
its audio does not depend on which GPU made it beyond bf16 rounding of another batch shape.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from audiobook_tts.engines.base import Audio, EngineError, Voice
from audiobook_tts.engines.csm import CsmEngine, text_seed
from audiobook_tts.engines.csmsampling import Sampling


def parse_devices(value: str) -> list[str]:
    """`cuda:0,cuda:1` (or `0,1`) -> ["cuda:0", "cuda:1"]; a clear error for anything else."""
    devices: list[str] = []
    for part in (item.strip() for item in value.split(",")):
        if not part:
            continue
        name = f"cuda:{part}" if part.isdigit() else part
        if not (name == "cpu" or name == "cuda" or name.removeprefix("cuda:").isdigit()):
            raise EngineError(
                f"AUDIOBOOK_TTS_CSM_DEVICES: {part!r} is not a device (use cuda:N, N or cpu)"
            )
        if name in devices:
            raise EngineError(f"AUDIOBOOK_TTS_CSM_DEVICES: {name} is named twice")
        devices.append(name)
    return devices


def pick_devices(devices: str, device: str, gpu_count: int) -> list[str]:
    """The devices to load on: those named, else AUDIOBOOK_TTS_DEVICE alone, else every
    visible GPU, else the CPU."""
    named = parse_devices(devices)
    for name in named:
        index = name.removeprefix("cuda:")
        beyond = index.isdigit() and int(index) >= gpu_count
        if name.startswith("cuda") and (gpu_count == 0 or beyond):
            raise EngineError(
                f"AUDIOBOOK_TTS_CSM_DEVICES names {name}, but torch sees {gpu_count} GPU(s)"
            )
    if named:
        return named
    if device:
        return [device]
    return [f"cuda:{index}" for index in range(gpu_count)] or ["cpu"]


def deal(count: int, parts: int) -> list[range]:
    """`count` items in `parts` contiguous runs, as even as can be (empty runs left out)."""
    size, extra = divmod(count, parts)
    runs: list[range] = []
    start = 0
    for part in range(parts):
        length = size + (1 if part < extra else 0)
        if length:
            runs.append(range(start, start + length))
        start += length
    return runs


class MultiCsmEngine:
    """Several `CsmEngine`s, one a GPU, as one engine (the same protocols as one)."""

    name = "csm"

    def __init__(self, engines: list[CsmEngine]) -> None:
        if not engines:
            raise EngineError("no csm engines to spread over")
        self.engines = engines
        first = engines[0]
        self.version = first.version
        self.device = ",".join(engine.device for engine in engines)
        # A batch fills every GPU's own batch.
        self.batch_size = sum(engine.batch_size for engine in engines)
        self.sampling = first.sampling
        self.pool = ThreadPoolExecutor(len(engines), thread_name_prefix="csm-device")
        self.turns = itertools.cycle(range(len(engines)))
        self.turn_lock = threading.Lock()

    def next_engine(self) -> CsmEngine:
        with self.turn_lock:
            return self.engines[next(self.turns)]

    def facts(self) -> dict[str, str]:
        facts = dict(self.engines[0].facts())
        facts["device"] = self.device
        facts["devices"] = str(len(self.engines))
        facts["batch_size"] = f"{self.batch_size} ({self.engines[0].batch_size} a device)"
        return facts

    def voices(self) -> list[Voice]:
        return self.engines[0].voices()

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        return self.next_engine().synthesize(text, voice, speed)

    def synthesize_seeded(self, text: str, voice: str, speed: float, seed: int) -> Audio:
        return self.next_engine().synthesize_seeded(text, voice, speed, seed)

    def stream(self, text: str, voice: str, speed: float) -> Iterator[Audio]:
        return self.next_engine().stream(text, voice, speed)

    def synthesize_batch(self, texts: list[str], voice: str, speed: float) -> list[Audio]:
        seeds = [text_seed(text, voice) for text in texts]
        return self.synthesize_batch_seeded(texts, voice, speed, seeds)

    def synthesize_batch_seeded(
        self, texts: list[str], voice: str, speed: float, seeds: list[int]
    ) -> list[Audio]:
        """The batch in one contiguous part a GPU, decoded at once; audio in the order given."""
        if len(seeds) != len(texts):
            raise EngineError(f"{len(seeds)} seeds for {len(texts)} texts")
        runs = deal(len(texts), len(self.engines))
        futures = [
            self.pool.submit(
                engine.synthesize_batch_seeded,
                [texts[index] for index in run],
                voice,
                speed,
                [seeds[index] for index in run],
            )
            for engine, run in zip(self.engines, runs, strict=False)
        ]
        return [audio for future in futures for audio in future.result()]


def load_csm(
    model_dir: str,
    devices: str = "",
    device: str = "",
    voices_dir: str = "",
    batch_size: int = 0,
    decoder: str = "fast",
    sampling: Sampling | None = None,
    compiled: bool = True,
) -> CsmEngine | MultiCsmEngine:
    """One engine on one device, or one a GPU joined as one (`pick_devices`). Loaded one
    after another: each warms up (and compiles) on its own GPU before the next starts."""
    import torch

    chosen = pick_devices(devices, device, torch.cuda.device_count())
    engines = [
        CsmEngine.load(
            model_dir, name, voices_dir, batch_size, decoder, sampling or Sampling(), compiled
        )
        for name in chosen
    ]
    return engines[0] if len(engines) == 1 else MultiCsmEngine(engines)
