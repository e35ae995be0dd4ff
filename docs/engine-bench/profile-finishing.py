"""Where a book's finishing time goes on a many-core host (no GPU needed): six spoken
chapters like the benchmark book's (74 sentences, about 840 s each, speech-like noise) handed
to the same spawned process pool `make_book` uses on a GPU machine, each stage timed inside
the worker: handed over (the chapter's samples pickled through a pipe), mastered, MP3, AAC,
FLAC. Run by device-run.sh finishing; prints one JSON object and writes it to
$OUT/profile-finishing.json."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def spoken(seed: int) -> Any:
    import numpy as np

    from audiobook_tts.chapter import MASTER_RATE, SpokenChapter, SpokenSentence

    rng = np.random.default_rng(seed)
    sentences = []
    for index in range(74):
        size = int(11 * MASTER_RATE)
        t = np.arange(size) / MASTER_RATE
        voiced = 0.2 * np.sin(2 * np.pi * (150 + index) * t) * (0.5 + 0.5 * np.sin(6 * np.pi * t))
        samples = (voiced + 0.02 * rng.standard_normal(size)).astype(np.float32)
        sentences.append(SpokenSentence(f"s{index}", samples, 0.4, False))
    return SpokenChapter(tuple(sentences), seed)


def timed_finish(folder: str, key: str, chapter: Any, handed: float) -> dict[str, float]:
    """`making.finish_chapter`'s work (`ChapterStore.put` after `master_chapter`), each stage's
    end stamped (time.time(), comparable across processes)."""
    from audiobook_tts.audio import encode, encode_mp3_parts
    from audiobook_tts.books.m4b import encode_aac
    from audiobook_tts.books.making import ParcelledChapter
    from audiobook_tts.chapter import master_chapter

    marks = {"handed": handed, "started": time.time()}
    if isinstance(chapter, ParcelledChapter):
        chapter = chapter.open()
        marks["opened"] = time.time()
    rendered = master_chapter(chapter)
    marks["mastered"] = time.time()

    def mp3() -> None:
        Path(folder, f"{key}.mp3").write_bytes(
            encode_mp3_parts(rendered.samples, rendered.rate, rendered.pauses)
        )
        marks["mp3"] = time.time()

    def flac() -> None:
        Path(folder, f"{key}.flac").write_bytes(encode(rendered.samples, rendered.rate, "flac"))
        marks["flac"] = time.time()

    with ThreadPoolExecutor(2) as encoders:
        jobs = [encoders.submit(mp3), encoders.submit(flac)]
        Path(folder, f"{key}.m4a").write_bytes(
            encode_aac(rendered.samples, rendered.rate, rendered.pauses)
        )
        marks["aac"] = time.time()
        for job in jobs:
            job.result()
    marks["stored"] = time.time()
    return marks


def finish_all(chapters: list[Any], parcelled: bool) -> dict[str, Any]:
    """The chapters through a fresh pool, handed through its pipe or in files."""
    from audiobook_tts.books.making import Finishing, ParcelledChapter, finishing_pool

    finishing = Finishing(max(1, ((os.cpu_count() or 2) - 1) // 2), processes=True)
    with tempfile.TemporaryDirectory() as folder:
        pool = finishing_pool(finishing)
        time.sleep(5)  # the workers started, as make_book's are by the time speech ends
        began = time.time()
        futures = []
        for index, chapter in enumerate(chapters):
            handed = ParcelledChapter.write(chapter, Path(folder)) if parcelled else chapter
            futures.append(pool.submit(timed_finish, folder, f"c{index}", handed, time.time()))
        marks = [future.result() for future in futures]
        pool.shutdown()
    return {
        "finishing": str(finishing),
        "handed": "in a file each (ParcelledChapter)" if parcelled else "through the pool's pipe",
        "wall": round(max(chapter["stored"] for chapter in marks) - began, 2),
        "chapters": [
            {stage: round(mark - began, 2) for stage, mark in chapter.items()} for chapter in marks
        ],
    }


def main() -> int:
    chapters = [spoken(seed) for seed in range(6)]
    result: dict[str, Any] = {"cpus": os.cpu_count()}
    result["pipe"] = finish_all(chapters, parcelled=False)
    result["file"] = finish_all(chapters, parcelled=True)
    print(json.dumps(result, indent=1))
    out = Path(os.environ.get("OUT", "."))
    (out / "profile-finishing.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
