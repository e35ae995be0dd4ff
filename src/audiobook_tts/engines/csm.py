"""Sesame CSM through Hugging Face transformers (`CsmForConditionalGeneration`).

The model directory is mounted at run time (`AUDIOBOOK_TTS_CSM_MODEL`) and read offline; it
is never downloaded. CUDA when there is one (bf16), else the CPU (float32);
`AUDIOBOOK_TTS_DEVICE` decides otherwise. Output: 24 kHz mono float32 in [-1, 1].

A voice is a speaker id, optionally with a reference clip (`<voice>.wav` + `<voice>.txt` in
`AUDIOBOOK_TTS_CSM_VOICES`) given as context to every sentence, so a chapter keeps one voice.
The length bound follows the text (12.5 frames a second, room for slow speech), and a
sentence that reaches it is reported, never cut silently.

Decoding is the makers' by default: top-k 50 with temperature 0.9 for both transformers
(`csmsampling`), seeded per sentence. Plain `synthesize` seeds each sentence from its text and
voice (`text_seed`), so a sentence, a chapter or a book made again is the same audio;
`synthesize_seeded` and `synthesize_batch_seeded` take the seed (another take of a sentence).
Temperature 0 is greedy.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from audiobook_tts.audio import resample
from audiobook_tts.engines.base import Audio, EngineError, EngineRefusal, Voice, sentence_seed
from audiobook_tts.engines.csmfast import FastCsmDecoder, capacity_for
from audiobook_tts.engines.csmsampling import REFERENCE, Sampling

logger = logging.getLogger("audiobook_tts.csm")

SAMPLE_RATE = 24_000
FRAME_RATE = 12.5  # Mimi frames a second: one frame is 80 ms
# Bound on frames: time for the text read slowly (8 characters a second), plus 2 s.
SLOW_CHARACTERS_PER_SECOND = 8.0
BOUND_EXTRA_SECONDS = 2.0
SPEAKERS = 10
# A whole 5,000-character chapter (74 sentences) in one or two batches: 4 GB on an H100.
DECODERS = ("fast", "generate")
DEFAULT_GPU_BATCH = 64
# On the CPU a batch helps too (the tiny model: 4 sentences in 4.7 s, 16.5 s one by one).
DEFAULT_CPU_BATCH = 8
# Decoders (with their graphs and caches) kept between requests: one per bucket used lately.
KEPT_DECODERS = 4
# Frames in a streamed sentence's first chunk (its time to first audio), then in each next.
STREAM_FIRST_FRAMES = 3
STREAM_FRAMES = 12
SAMPLES_PER_FRAME = int(SAMPLE_RATE / FRAME_RATE)
# Sentences the codec decodes in one call on a GPU: 444 one at a time took 4.3 s of a book's
# 8.9 s of speech on an H200; 64 rows in one call take a seventh of 64 calls.
CODEC_ROWS = 64
# Frames decoded again before a streamed chunk's own: past Mimi's 250-frame attention window,
# so a chunk equals that part of the whole decode.
STREAM_CONTEXT_FRAMES = 256
OPENAI_SPEAKERS = {"alloy": 0, "echo": 1, "fable": 2, "onyx": 3, "nova": 4, "shimmer": 5}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def check_model_dir(directory: str) -> Path:
    """The model directory, or an EngineError naming the first thing missing from it."""
    if not directory:
        raise EngineError("AUDIOBOOK_TTS_CSM_MODEL is not set: mount a CSM model directory")
    path = Path(directory)
    if not path.is_dir():
        raise EngineError(f"CSM model directory {path} does not exist (is it mounted?)")
    config = path / "config.json"
    if not config.is_file():
        raise EngineError(f"CSM model directory {path} has no config.json")
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as error:
        raise EngineError(f"{config} is not valid JSON: {error}") from error
    if model_type != "csm":
        raise EngineError(f"{config} is a {model_type!r} model, not csm")
    for what, names in (
        ("weights", WEIGHT_FILES),
        ("tokenizer", TOKENIZER_FILES),
        ("processor config", PROCESSOR_FILES),
    ):
        if not any((path / name).is_file() for name in names):
            raise EngineError(f"CSM model directory {path} has no {what} ({' or '.join(names)})")
    return path


def frame_bound(text: str) -> int:
    """Frames allowed for `text`: it read slowly, and then some; never the library's 10 s."""
    seconds = len(text) / SLOW_CHARACTERS_PER_SECOND + BOUND_EXTRA_SECONDS
    return math.ceil(seconds * FRAME_RATE)


def padded_rows(count: int, most: int) -> int:
    """The rows a batch of `count` decodes in: the next power of two, at most `most` (a
    batch over `most` as it is). A few shapes, so a few captured graphs serve every batch."""
    rows = 1 << max(0, count - 1).bit_length()
    return max(count, min(rows, most))


def text_seed(text: str, voice: str) -> int:
    """The seed a sentence gets when none is given: from its text and voice alone."""
    return sentence_seed(text + "\0" + voice)


def pick_device(requested: str, cuda_available: bool) -> str:
    if requested:
        if requested.startswith("cuda") and not cuda_available:
            raise EngineError(f"AUDIOBOOK_TTS_DEVICE={requested}, but torch sees no CUDA device")
        return requested
    return "cuda" if cuda_available else "cpu"


@dataclass(frozen=True)
class Reference:
    """A voice's reference clip: its words and its 24 kHz samples."""

    text: str
    samples: np.ndarray[Any, np.dtype[np.float32]]


def read_references(directory: str) -> dict[str, Reference]:
    """`<voice>.wav` with `<voice>.txt` beside it, resampled to 24 kHz mono."""
    found: dict[str, Reference] = {}
    if not directory:
        return found
    folder = Path(directory)
    if not folder.is_dir():
        raise EngineError(f"AUDIOBOOK_TTS_CSM_VOICES={folder} is not a directory")
    for wav in sorted(folder.glob("*.wav")):
        words = wav.with_suffix(".txt")
        if not words.is_file():
            raise EngineError(f"reference clip {wav} has no transcript {words.name} beside it")
        data, rate = soundfile.read(wav, dtype="float32", always_2d=True)
        mono = data.mean(axis=1).astype(np.float32)
        found[wav.stem] = Reference(
            words.read_text(encoding="utf-8").strip(), resample(mono, int(rate), SAMPLE_RATE)
        )
    return found


class CsmEngine:
    name = "csm"

    def __init__(
        self,
        model: Any,
        processor: Any,
        device: str,
        model_dir: str = "(in memory)",
        references: dict[str, Reference] | None = None,
        batch_size: int = 0,
        decoder: str = "fast",
        sampling: Sampling = REFERENCE,
        compiled: bool = False,
    ) -> None:
        import torch
        import transformers

        self.model = model
        self.processor = processor
        self.device = device
        self.model_dir = model_dir
        self.references = references or {}
        if batch_size < 0:
            raise EngineError(f"AUDIOBOOK_TTS_CSM_BATCH={batch_size}: use 1 or more (0: by device)")
        # Sentences of a chapter decoded together: a GPU is bound by kernel launches, not math.
        self.batch_size = batch_size or (
            DEFAULT_GPU_BATCH if device.startswith("cuda") else DEFAULT_CPU_BATCH
        )
        if decoder not in DECODERS:
            raise EngineError(f"AUDIOBOOK_TTS_CSM_DECODER={decoder}: use {' or '.join(DECODERS)}")
        # fast: static caches, frames in CUDA graphs on a GPU; generate: transformers' own.
        self.decoder = decoder
        self.graphs = decoder == "fast" and device.startswith("cuda")
        # Batches padded to a power of two (`padded_rows`): a book's ragged batches (a
        # window's last, a chapter's) then reuse a few captured graphs, not one each.
        self.pad_batches = self.graphs
        self.sampling = sampling
        # torch.compile of each layer's parts around attention (a GPU with `fast`).
        self.compiled = compiled and self.graphs
        self.dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.version = f"transformers {transformers.__version__}, torch {torch.__version__}"
        # One generate at a time: the model's caches are not shared between threads.
        self.lock = threading.Lock()
        # (batch, capacity) -> decoder with its graph; least recently used first.
        self.decoders: dict[tuple[int, int], FastCsmDecoder] = {}

    @classmethod
    def load(
        cls,
        model_dir: str,
        device: str = "",
        voices_dir: str = "",
        batch_size: int = 0,
        decoder: str = "fast",
        sampling: Sampling = REFERENCE,
        compiled: bool = True,
    ) -> CsmEngine:
        """Load offline from a mounted directory (HF_HUB_OFFLINE: nothing is downloaded)."""
        path = check_model_dir(model_dir)
        references = read_references(voices_dir)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import CsmForConditionalGeneration, CsmProcessor

        chosen = pick_device(device, torch.cuda.is_available())
        dtype = torch.bfloat16 if chosen.startswith("cuda") else torch.float32
        try:
            processor = CsmProcessor.from_pretrained(path, local_files_only=True)
            model = CsmForConditionalGeneration.from_pretrained(
                path, local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise EngineError(f"cannot load the CSM model from {path}: {first}") from error
        engine = cls(
            model.to(chosen).eval(),
            processor,
            chosen,
            str(path),
            references,
            batch_size,
            decoder,
            sampling,
            compiled,
        )
        engine.warm_up()
        return engine

    def facts(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "device": self.device,
            "dtype": self.dtype,
            "model": self.model_dir,
            "batch_size": str(self.batch_size),
            "decoder": f"{self.decoder}{' (CUDA graphs)' if self.graphs else ''}"
            f"{' (compiled layers)' if self.compiled else ''}",
            "sampling": self.sampling.describe(),
        }

    def voices(self) -> list[Voice]:
        listed = [
            Voice(str(speaker), self.name, "en", f"speaker {speaker}")
            for speaker in range(SPEAKERS)
        ]
        listed += [
            Voice(alias, self.name, "en", f"{alias} (speaker {speaker})")
            for alias, speaker in OPENAI_SPEAKERS.items()
        ]
        known = {voice.id for voice in listed}
        listed += [
            Voice(name, self.name, "en", f"{name} (reference clip)")
            for name in self.references
            if name not in known
        ]
        return sorted(listed, key=lambda voice: voice.id)

    def speaker(self, voice: str) -> int:
        if voice.isdigit() and int(voice) < SPEAKERS:
            return int(voice)
        if voice in OPENAI_SPEAKERS:
            return OPENAI_SPEAKERS[voice]
        if voice in self.references:
            return 0
        raise EngineError(f"unknown voice {voice!r}")

    def conversation(self, text: str, voice: str) -> list[dict[str, Any]]:
        """The voice's reference turn (if it has one), then the text to speak."""
        role = str(self.speaker(voice))
        turns: list[dict[str, Any]] = []
        reference = self.references.get(voice)
        if reference is not None:
            turns.append(
                {
                    "role": role,
                    "content": [
                        {"type": "text", "text": reference.text},
                        {"type": "audio", "path": reference.samples},
                    ],
                }
            )
        turns.append({"role": role, "content": [{"type": "text", "text": text}]})
        return turns

    def inputs(self, texts: list[str], voice: str) -> Any:
        """Processor inputs for a batch of texts in one voice (left-padded)."""
        prompts: list[str] = []
        clips: list[Any] = []
        for text in texts:
            turns = self.conversation(text, voice)
            prompts.append(
                self.processor.apply_chat_template(
                    turns, tokenize=False, add_generation_prompt=False
                )
            )
            clips += [
                part["path"]
                for turn in turns
                for part in turn["content"]
                if part["type"] == "audio"
            ]
        return self.processor(text=prompts, audio=clips or None, add_special_tokens=False)

    def generate(
        self,
        texts: list[str],
        voice: str,
        frames: int | None = None,
        seeds: list[int] | None = None,
    ) -> list[Audio]:
        """A batch decoded together; `frames` fixes the length (min = max new tokens).
        `seeds`: each text's (none: `text_seed` of each), for sampled decoding.

        Each text keeps its own length bound in a batch: the batch decodes to the longest
        bound, and each sequence is cut at its end token or its own bound, whichever comes
        first, before the codec turns it into audio (as it would be alone).
        """
        import torch

        if seeds is None:
            seeds = [text_seed(text, voice) for text in texts]
        if len(seeds) != len(texts):
            raise EngineError(f"{len(seeds)} seeds for {len(texts)} texts")
        bounds = [frames or frame_bound(text) for text in texts]
        eos = self.model.config.codebook_eos_token_id
        results: list[Audio] = []
        with self.lock, torch.inference_mode():
            if self.decoder == "fast":
                # Padding rows repeat the first sentence; their codes are dropped.
                rows = padded_rows(len(texts), self.batch_size) if self.pad_batches else 0
                extra = max(0, rows - len(texts))
                inputs = self.inputs(texts + texts[:1] * extra, voice).to(self.device)
                codes = self.fast_codes(
                    inputs, max(bounds), None if frames else eos, seeds + seeds[:1] * extra
                )
                sequences = list(codes[: len(texts)])
            else:
                sequences = self.generated_codes(texts, voice, max(bounds), frames, seeds)
            cuts: list[int] = []
            for codes, bound in zip(sequences, bounds, strict=True):
                ends = (codes == eos).all(dim=-1).nonzero()
                end = int(ends.min()) if ends.numel() else int(codes.shape[0])
                cuts.append(min(end, bound))
                # Alone, it would have stopped at its bound unless its end token came first.
                ended = ends.numel() > 0 and end < bound
                results.append(Audio(np.zeros(0, dtype=np.float32), SAMPLE_RATE, not ended))
            for index, samples in self.decode_audio(sequences, cuts).items():
                results[index] = Audio(
                    np.clip(samples, -1.0, 1.0), SAMPLE_RATE, results[index].hit_bound
                )
        return results

    def decode_audio(
        self, sequences: list[Any], cuts: list[int], rows: int = 0
    ) -> dict[int, np.ndarray]:
        """Each sequence's first `cut` frames through the codec (Mimi): on a GPU the rows
        together, `CODEC_ROWS` a call (Mimi's decoder is causal, so a row's frames past its
        cut, decoded with it, change nothing before; bf16 rounds a batch as it rounds the
        transformers' batches); on the CPU one row a call, each row exactly as alone. `rows`:
        another count a call."""
        import torch

        codec = self.model.codec_model
        wanted = [index for index, cut in enumerate(cuts) if cut > 0]
        rows = rows or (CODEC_ROWS if self.device.startswith("cuda") else 1)
        audio: dict[int, np.ndarray] = {}
        for start in range(0, len(wanted), rows):
            group = wanted[start : start + rows]
            longest = max(cuts[index] for index in group)
            # (rows of the `generate` fallback can be shorter: padded, past their cut)
            padded = [sequences[index][:longest] for index in group]
            padded = [
                torch.nn.functional.pad(row, (0, 0, 0, longest - row.shape[0])) for row in padded
            ]
            codes = torch.stack(padded)
            with torch.inference_mode():
                values = codec.decode(codes.transpose(1, 2)).audio_values[:, 0].float().cpu()
            for row, index in enumerate(group):
                samples = values[row, : cuts[index] * SAMPLES_PER_FRAME].numpy()
                audio[index] = samples.astype(np.float32)
        return audio

    def generated_codes(
        self, texts: list[str], voice: str, longest: int, frames: int | None, seeds: list[int]
    ) -> list[Any]:
        """transformers' own `generate`: greedy, a batch at once; or sampled with the same
        top-k and temperature for both transformers, each text alone after seeding torch with
        its seed (a batch shares one generator, so alone is how a text keeps its own draws)."""
        import torch

        options: dict[str, Any] = {"max_new_tokens": longest, "return_dict_in_generate": True}
        if frames is not None:
            options["min_new_tokens"] = frames
        if self.sampling.greedy:
            options |= {"do_sample": False, "depth_decoder_do_sample": False}
            inputs = self.inputs(texts, voice).to(self.device)
            return list(self.model.generate(**inputs, **options).sequences)
        options |= {
            "do_sample": True,
            "top_k": self.sampling.top_k,
            "temperature": self.sampling.temperature,
            "depth_decoder_do_sample": True,
            "depth_decoder_top_k": self.sampling.top_k,
            "depth_decoder_temperature": self.sampling.temperature,
        }
        sequences: list[Any] = []
        for text, seed in zip(texts, seeds, strict=True):
            torch.manual_seed(seed)
            inputs = self.inputs([text], voice).to(self.device)
            sequences.append(self.model.generate(**inputs, **options).sequences[0])
        return sequences

    def fast_decoder(self, batch: int, tokens: int) -> FastCsmDecoder:
        """The static-cache decoder for `batch` rows of `tokens` (prompt + frames): kept, with
        its captured graph, for the next request of its bucket (the last few buckets used)."""
        key = (batch, capacity_for(tokens))
        decoder = self.decoders.pop(key, None) or FastCsmDecoder(
            self.model, *key, self.sampling, self.compiled
        )
        self.decoders[key] = decoder  # most recently used last
        while len(self.decoders) > KEPT_DECODERS:
            self.decoders.pop(next(iter(self.decoders)))
        return decoder

    def fast_chunks(
        self,
        inputs: Any,
        frames: int,
        eos: int | None,
        seeds: list[int],
        sizes: Iterable[int] = (),
    ) -> Iterator[Any]:
        """Codes in chunks from the static-cache decoder: compiled layers in a CUDA graph on a
        GPU. Compiling and capturing happen before the first chunk, so a failure is seen
        before any audio: once said in the log, the layers run uncompiled from then on (an
        image without a C compiler for Triton), and if capture fails too, eagerly."""
        batch, length = inputs["attention_mask"].shape
        while True:
            decoder = self.fast_decoder(batch, length + frames)
            chunks = decoder.chunks(
                inputs, frames, use_graph=self.graphs, eos=eos, sizes=sizes, seeds=seeds
            )
            try:
                first = next(chunks)
            except RuntimeError as error:
                if self.compiled:
                    self.compiled = False
                    logger.warning("csm: torch.compile failed, layers uncompiled: %s", error)
                elif self.graphs:
                    self.graphs = False
                    logger.warning("csm: CUDA graph capture failed, decoding eagerly: %s", error)
                else:
                    raise
                self.decoders.clear()
                continue
            yield first
            yield from chunks
            return

    def fast_codes(self, inputs: Any, frames: int, eos: int | None, seeds: list[int]) -> Any:
        import torch

        return torch.cat(list(self.fast_chunks(inputs, frames, eos, seeds)), dim=1)

    def warm_up(self) -> None:
        """Capture the single-stream graph before the first request (a GPU with `fast`): the
        first request would otherwise wait for it (about a second)."""
        if self.graphs:
            self.generate(["Ready."], "0", frames=2)

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        return self.synthesize_batch([text], voice, speed)[0]

    def synthesize_seeded(self, text: str, voice: str, speed: float, seed: int) -> Audio:
        return self.synthesize_batch_seeded([text], voice, speed, [seed])[0]

    def stream(
        self, text: str, voice: str, speed: float, seed: int | None = None
    ) -> Iterator[Audio]:
        """One sentence as audio chunks while it is decoded (the `fast` decoder): the first
        after `STREAM_FIRST_FRAMES` frames. Each chunk is the codec's decode of every frame so
        far (from `STREAM_CONTEXT_FRAMES` back) less what was sent: Mimi's decoder is causal,
        so the chunks join into the sentence's whole decode. `generate`: the sentence, whole.
        The seed is `synthesize`'s (`text_seed`) unless given.
        """
        self.check_speed(speed)
        self.speaker(voice)
        seeds = [text_seed(text, voice) if seed is None else seed]
        if self.decoder != "fast":
            yield self.generate([text], voice, seeds=seeds)[0]
            return
        import torch

        inputs = self.inputs([text], voice).to(self.device)
        bound = frame_bound(text)
        eos = self.model.config.codebook_eos_token_id
        sizes = itertools.chain([STREAM_FIRST_FRAMES], itertools.repeat(STREAM_FRAMES))
        codes: list[Any] = []
        total = sent = 0
        with self.lock, torch.inference_mode():
            for chunk in self.fast_chunks(inputs, bound, eos, seeds, sizes):
                row = chunk[0]
                ends = (row == eos).all(dim=-1).nonzero()
                ended = ends.numel() > 0
                if ended:
                    row = row[: int(ends.min())]
                codes.append(row)
                total += int(row.shape[0])
                if total > sent:
                    start = max(0, sent - STREAM_CONTEXT_FRAMES)
                    window = torch.cat(codes)[start:total]
                    decoded = self.model.codec_model.decode(window.transpose(0, 1)[None])
                    fresh = decoded.audio_values[0, 0, (sent - start) * SAMPLES_PER_FRAME :]
                    samples = fresh.float().cpu().numpy().astype(np.float32)
                    sent = total
                    yield Audio(
                        np.clip(samples, -1.0, 1.0), SAMPLE_RATE, not ended and total >= bound
                    )
                if ended:
                    return

    def check_speed(self, speed: float) -> None:
        if abs(speed - 1.0) > 1e-6:
            raise EngineRefusal("speed: the csm engine speaks at 1.0 only")

    def synthesize_batch(self, texts: list[str], voice: str, speed: float) -> list[Audio]:
        """Several sentences in one voice, decoded together; audio in the order given."""
        self.check_speed(speed)
        self.speaker(voice)
        return self.generate(texts, voice)

    def synthesize_batch_seeded(
        self, texts: list[str], voice: str, speed: float, seeds: list[int]
    ) -> list[Audio]:
        """As `synthesize_batch`, each sentence drawn with its own seed (its audio the same
        alone or in any batch)."""
        self.check_speed(speed)
        self.speaker(voice)
        return self.generate(texts, voice, seeds=seeds)
