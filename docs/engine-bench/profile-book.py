"""Where a book's time goes on a GPU machine (random csm-1b-shaped weights): the engine's
share split into decoding, the codec and the host, and each chapter's finishing (mastering,
FLAC, MP3, AAC) timed on one core and in parallel processes. Run by device-run.sh profile;
prints one JSON object and writes it to $OUT/profile-book.json."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def finishing_costs(spoken: Any) -> dict[str, float]:
    from audiobook_tts.audio import encode

    try:
        from audiobook_tts.books.m4b import encode_aac
    except ImportError:
        encode_aac = None
    from audiobook_tts.chapter import MASTER_RATE, master_chapter

    costs: dict[str, float] = {}
    started = time.perf_counter()
    rendered = master_chapter(spoken)
    costs["master"] = time.perf_counter() - started
    for name in ("flac", "mp3"):
        started = time.perf_counter()
        encode(rendered.samples, MASTER_RATE, name)
        costs[name] = time.perf_counter() - started
    started = time.perf_counter()
    if encode_aac is not None:
        encode_aac(rendered.samples, MASTER_RATE)
    else:
        import av

        container = av.open(io.BytesIO(), "w", format="mp4")
        stream = container.add_stream("aac", rate=MASTER_RATE, layout="mono")
        stream.bit_rate = 64_000
        for start in range(0, rendered.samples.size, 8192):
            block = rendered.samples[start : start + 8192]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = MASTER_RATE
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        container.close()
    costs["aac"] = time.perf_counter() - started
    costs["audio_seconds"] = rendered.samples.size / MASTER_RATE
    return costs


def main() -> int:
    import torch

    from audiobook_tts.chapter import SpokenChapter, chunks, spoken_sentence
    from audiobook_tts.enginebench import bench_engine, chapter_text

    out = Path(os.environ.get("OUT", "."))
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    chapters = 6
    engine, load = bench_engine("csm-1b", "cuda", batch_size=batch)
    result: dict[str, Any] = {"load_seconds": round(load, 1), "batch": batch}
    codec = engine.model.codec_model
    timers: dict[str, float] = {"codes": 0.0, "codec": 0.0, "inputs": 0.0}
    frames: list[int] = []
    original_codes, original_decode, original_inputs = (
        engine.fast_codes,
        codec.decode,
        engine.inputs,
    )

    def timed(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            torch.cuda.synchronize()
            started = time.perf_counter()
            value = function(*args, **kwargs)
            torch.cuda.synchronize()
            timers[name] += time.perf_counter() - started
            if name == "codes":
                frames.append(int(value.shape[1]))
            return value

        return wrapper

    engine.fast_codes = timed("codes", original_codes)  # type: ignore[method-assign]
    codec.decode = timed("codec", original_decode)
    engine.inputs = timed("inputs", original_inputs)  # type: ignore[method-assign]
    texts = [chunk.text for chunk in chunks(chapter_text())]
    sentences = [f"{text} ({c + 1})" for c in range(chapters) for text in texts]
    from audiobook_tts.engines.base import synthesize_all

    for _ in range(2):
        for key in timers:
            timers[key] = 0.0
        frames.clear()
        started = time.perf_counter()
        audio = synthesize_all(engine, sentences, "0", 1.0)
        torch.cuda.synchronize()
        wall = time.perf_counter() - started
    seconds = sum(item.samples.size / item.rate for item in audio)
    result["speech"] = {
        "wall": round(wall, 2),
        "audio_seconds": round(seconds, 1),
        "times_real_time": round(seconds / wall, 1),
        **{key: round(value, 2) for key, value in timers.items()},
        "frames_per_batch": frames,
    }
    print(json.dumps(result), flush=True)
    # Batched codec decode: one call for a batch's rows against one call a row.
    codes = torch.randint(0, 2000, (64, 32, 150), device="cuda")
    for rows in (1, 16, 64):
        torch.cuda.synchronize()
        started = time.perf_counter()
        for start in range(0, 64, rows):
            original_decode(codes[start : start + rows])
        torch.cuda.synchronize()
        result.setdefault("codec_64_rows_of_150_frames", {})[f"{rows}_a_call"] = round(
            time.perf_counter() - started, 3
        )
    print(json.dumps(result["codec_64_rows_of_150_frames"]), flush=True)
    # A chapter's finishing on one core, and six chapters in six processes at once.
    count = len(texts)
    chapter = SpokenChapter(
        tuple(
            spoken_sentence(t, a, 0.4)
            for t, a in zip(sentences[:count], audio[:count], strict=True)
        ),
        7,
    )
    result["finishing_one_core"] = {k: round(v, 2) for k, v in finishing_costs(chapter).items()}
    print(json.dumps(result["finishing_one_core"]), flush=True)
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(chapters, mp_context=context) as pool:
        pool.submit(len, "warm").result()
        started = time.perf_counter()
        parts = list(pool.map(finishing_costs, [chapter] * chapters))
        result["finishing_six_processes"] = {
            "wall": round(time.perf_counter() - started, 2),
            "slowest": {k: round(max(p[k] for p in parts), 2) for k in parts[0]},
        }
    print(json.dumps(result["finishing_six_processes"]), flush=True)
    result["cpus"] = os.cpu_count()
    (out / "profile-book.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
