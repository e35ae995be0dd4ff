"""The csm engine on a tiny random CSM made in-process (real transformers code on the CPU,
seconds a request; `nox -s tests` installs torch and the csm lock): what it returns, that a sentence's (seeded) decoding repeats itself, reference clips,
length bounds, model routing, readiness, and a broken model directory's one-line error."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from audiobook_tts.app import create_app
from audiobook_tts.chapter import render_chapter
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines import Engine, EngineError, load_engine
from audiobook_tts.engines.csm import (
    KEPT_DECODERS,
    STREAM_FIRST_FRAMES,
    CsmEngine,
    check_model_dir,
    frame_bound,
    padded_rows,
)
from audiobook_tts.engines.csmfast import FastCsmDecoder, capacity_for
from audiobook_tts.engines.csmrandom import save
from audiobook_tts.engines.csmsampling import GREEDY
from tests.unit.audiobook_tts.conftest import ToneEngine


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(tmp_path_factory.mktemp("tiny-csm"))


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("voices")
    rng = np.random.default_rng(7)
    clip = (0.1 * rng.standard_normal(16000)).astype(np.float32)  # 1 s at 16 kHz
    soundfile.write(folder / "narrator.wav", clip, 16000)
    (folder / "narrator.txt").write_text("This is how the narrator sounds.\n")
    return folder


@pytest.fixture(scope="session")
def engine(model_dir: Path, voices_dir: Path) -> CsmEngine:
    return CsmEngine.load(str(model_dir), "cpu", str(voices_dir))


def test_audio_is_24khz_float32_finite_clipped_and_grows_with_the_text(engine: CsmEngine) -> None:
    short = engine.synthesize("Hi.", "0", 1.0)
    long = engine.synthesize("A much longer sentence, with many more words to say.", "0", 1.0)
    for audio in (short, long):
        assert audio.rate == 24000 and audio.samples.dtype == np.float32
        assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() <= 1.0
        assert audio.samples.size % 1920 == 0  # whole 80 ms frames
    # Random weights rarely say "end": both run to their bound, which follows the text.
    assert long.samples.size > short.samples.size
    assert frame_bound("x" * 80) > frame_bound("x" * 8) > 10


def test_a_sentence_gives_the_same_samples_twice(engine: CsmEngine) -> None:
    first = engine.synthesize("The same words, twice.", "alloy", 1.0)
    second = engine.synthesize("The same words, twice.", "alloy", 1.0)
    assert np.array_equal(first.samples, second.samples)


def batched(engine: CsmEngine, size: int) -> CsmEngine:
    """The same model and voices, decoding `size` sentences at a time."""
    return CsmEngine(
        engine.model, engine.processor, "cpu", engine.model_dir, engine.references, size
    )


def test_a_batch_gives_each_sentence_exactly_what_it_gets_alone(engine: CsmEngine) -> None:
    texts = ["Hi.", "A much longer sentence, with many more words to say.", "Then rain."]
    alone = [engine.synthesize(text, "narrator", 1.0) for text in texts]
    together = batched(engine, 3).synthesize_batch(texts, "narrator", 1.0)
    for one, many in zip(alone, together, strict=True):
        # Each keeps its own length bound, and greedy decoding with left padding matches.
        assert np.array_equal(one.samples, many.samples) and one.hit_bound == many.hit_bound
    assert len({audio.samples.size for audio in together}) == 3


def test_a_batch_padded_to_a_power_of_two_gives_each_sentence_what_it_gets_alone(
    engine: CsmEngine,
) -> None:
    assert [padded_rows(count, 256) for count in (1, 2, 3, 40, 129, 188, 256, 300)] == [
        1,
        2,
        4,
        64,
        256,
        256,
        256,
        300,
    ]
    assert padded_rows(40, 48) == 48
    texts = ["Hi.", "A much longer sentence, with many more words to say.", "Then rain."]
    plain = batched(engine, 8)
    padded = batched(engine, 8)
    padded.pad_batches = True  # what a GPU does, so its ragged batches reuse a graph
    seen: list[tuple[int, ...]] = []
    decode = padded.fast_codes

    def recorded(inputs: Any, *args: Any) -> Any:
        seen.append(tuple(inputs["attention_mask"].shape[:1]))
        return decode(inputs, *args)

    padded.fast_codes = recorded  # type: ignore[method-assign,assignment]
    alone = plain.synthesize_batch(texts, "narrator", 1.0)
    together = padded.synthesize_batch(texts, "narrator", 1.0)
    assert seen == [(4,)]  # three sentences decoded as four rows
    assert len(together) == 3
    for one, many in zip(alone, together, strict=True):
        assert np.array_equal(one.samples, many.samples) and one.hit_bound == many.hit_bound


def test_a_chapter_in_batches_is_the_chapter_sentence_by_sentence(engine: CsmEngine) -> None:
    text = "One. The second sentence is longer than the first.\n\nTwo. Three, four."
    seen: list[tuple[int, int]] = []
    one_by_one = render_chapter(batched(engine, 1), text, "alloy")
    in_batches = render_chapter(
        batched(engine, 3), text, "alloy", progress=lambda done, total: seen.append((done, total))
    )
    assert engine.batch_size == 8  # the CPU's default
    assert np.array_equal(one_by_one.samples, in_batches.samples)
    assert seen == [(3, 4), (4, 4)]  # progress per batch: 3 sentences, then the last


def test_the_codec_decodes_rows_together_as_it_decodes_each_alone(engine: CsmEngine) -> None:
    # A GPU decodes a batch's sentences in one codec call, each to its own cut: a row's
    # frames past its cut change nothing before it (float rounding aside).
    import torch

    generator = torch.Generator().manual_seed(5)
    books = engine.model.config.num_codebooks
    sequences = [torch.randint(0, 30, (frames, books), generator=generator) for frames in (9, 6, 4)]
    cuts = [9, 3, 0]
    alone = engine.decode_audio(sequences, cuts, rows=1)
    together = engine.decode_audio(sequences, cuts, rows=3)
    assert sorted(alone) == sorted(together) == [0, 1]  # nothing to decode for a cut of 0
    for index in alone:
        assert together[index].size == cuts[index] * 1920
        np.testing.assert_allclose(together[index], alone[index], atol=1e-4)


@pytest.mark.parametrize("voice", ["alloy", "narrator"])
def test_the_fast_decoder_matches_generate_token_for_token(engine: CsmEngine, voice: str) -> None:
    """Static caches and hand-written steps against transformers' own greedy `generate`,
    one sentence and a left-padded batch, with and without a reference clip as context."""
    import torch

    for texts in (["Chapter one. It was a dark night."], ["Hi.", "A much longer sentence."]):
        inputs = engine.inputs(texts, voice)
        with torch.inference_mode():
            reference = engine.model.generate(
                **inputs,
                max_new_tokens=24,
                do_sample=False,
                depth_decoder_do_sample=False,
                return_dict_in_generate=True,
            ).sequences
        tokens = inputs["attention_mask"].shape[1] + 24
        decoder = FastCsmDecoder(engine.model, len(texts), capacity_for(tokens))
        fast = decoder.run(inputs, 24, use_graph=False)
        assert fast.shape == reference.shape
        assert torch.equal(fast, reference)


def test_one_kept_decoder_serves_prompts_of_any_length_in_its_bucket(engine: CsmEngine) -> None:
    """The decoder (and, on a GPU, its captured graph) is made once per batch size and cache
    bucket: a short request after a long one reuses it, and gets what a fresh decoder gives."""
    import torch

    fresh = CsmEngine(engine.model, engine.processor, "cpu", references=engine.references)
    long = fresh.generate(["A much longer sentence, with many more words to say."], "narrator")
    kept = dict(fresh.decoders)
    short = fresh.generate(["Hi."], "0")
    assert list(fresh.decoders) == list(kept) and fresh.decoders == kept
    alone = CsmEngine(engine.model, engine.processor, "cpu").generate(["Hi."], "0")
    assert np.array_equal(short[0].samples, alone[0].samples) and long[0].samples.size
    inputs = engine.inputs(["Hi."], "0")
    with pytest.raises(ValueError, match="does not fit this decoder"):
        FastCsmDecoder(engine.model, 1, 8).run(inputs, 24, use_graph=False)
    assert capacity_for(1) == 256 and capacity_for(257) == 512
    for _ in range(6):  # buckets beyond the kept few are let go, least recent first
        fresh.fast_decoder(1, 256 * (len(fresh.decoders) + 3))
    assert len(fresh.decoders) == KEPT_DECODERS
    assert torch.is_inference_mode_enabled() is False


def test_a_streamed_sentence_comes_in_chunks_that_join_into_its_whole_audio(
    engine: CsmEngine,
) -> None:
    """The fast decoder hands out frames as it makes them: the first chunk after a few
    frames, and the chunks' samples join into the sentence's audio as `synthesize` gives it
    (Mimi's decoder is causal: a prefix decodes to the same samples, to float rounding)."""
    text = "A much longer sentence, with many more words to say."
    whole = engine.synthesize(text, "narrator", 1.0)
    pieces = list(engine.stream(text, "narrator", 1.0))
    assert len(pieces) > 2
    assert pieces[0].samples.size == STREAM_FIRST_FRAMES * 1920
    joined = np.concatenate([piece.samples for piece in pieces])
    assert joined.size == whole.samples.size
    assert np.abs(joined - whole.samples).max() < 1e-4
    assert [piece.hit_bound for piece in pieces[:-1]] == [False] * (len(pieces) - 1)
    assert pieces[-1].hit_bound == whole.hit_bound
    slow = CsmEngine(engine.model, engine.processor, "cpu", decoder="generate")
    assert len(list(slow.stream("Hi.", "0", 1.0))) == 1  # generate: the sentence, whole
    with pytest.raises(EngineError, match="speed"):
        next(engine.stream(text, "0", 1.5))
    assert engine.lock.acquire(blocking=False)  # a finished stream holds no lock
    engine.lock.release()


def test_both_decoders_give_the_engine_the_same_audio_when_greedy(engine: CsmEngine) -> None:
    texts = ["Hi.", "The second sentence is longer than the first."]
    slow = CsmEngine(engine.model, engine.processor, "cpu", decoder="generate", sampling=GREEDY)
    fast = CsmEngine(engine.model, engine.processor, "cpu", sampling=GREEDY)
    for fast_audio, slow_audio in zip(
        fast.synthesize_batch(texts, "0", 1.0),
        slow.synthesize_batch(texts, "0", 1.0),
        strict=True,
    ):
        assert np.array_equal(fast_audio.samples, slow_audio.samples)
        assert fast_audio.hit_bound == slow_audio.hit_bound
    assert engine.facts()["decoder"] == "fast" and slow.facts()["decoder"] == "generate"
    with pytest.raises(EngineError, match="AUDIOBOOK_TTS_CSM_DECODER=beam"):
        CsmEngine(engine.model, engine.processor, "cpu", decoder="beam")


def test_a_reference_clip_is_context_for_its_voice(engine: CsmEngine) -> None:
    plain = engine.inputs(["Chapter one."], "0")
    with_clip = engine.inputs(["Chapter one."], "narrator")
    assert "input_values" not in plain and with_clip["input_values"].shape[-1] == 24000
    assert with_clip["input_ids"].shape[1] > plain["input_ids"].shape[1]
    audio = engine.synthesize("Chapter one.", "narrator", 1.0)
    assert audio.samples.size > 0 and np.isfinite(audio.samples).all()
    assert {"narrator", "0", "alloy"} <= {voice.id for voice in engine.voices()}


def test_a_sentence_that_reaches_the_bound_says_so(engine: CsmEngine) -> None:
    (audio,) = engine.generate(["Short."], "0", frames=5)
    assert audio.hit_bound and audio.samples.size == 5 * 1920


def test_speed_other_than_one_is_refused_not_faked(engine: CsmEngine) -> None:
    with pytest.raises(EngineError, match="speed"):
        engine.synthesize("Hi.", "0", 1.5)


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("config.json", "config.json"),
        ("model.safetensors", "weights"),
        ("tokenizer.json", "tokenizer"),
    ],
)
def test_a_broken_model_directory_names_what_is_missing(
    model_dir: Path, tmp_path: Path, remove: str, named: str
) -> None:
    broken = tmp_path / "model"
    broken.mkdir()
    for item in model_dir.iterdir():
        if item.name != remove and not (remove == "tokenizer.json" and "tokenizer" in item.name):
            (broken / item.name).symlink_to(item)
    with pytest.raises(EngineError, match=named):
        check_model_dir(str(broken))
    with pytest.raises(EngineError, match="does not exist"):
        check_model_dir(str(tmp_path / "absent"))


@pytest.fixture
def two_engines(model_dir: Path, voices_dir: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(
        engines=("csm", "tone"), csm_model=str(model_dir), csm_voices=str(voices_dir), device="cpu"
    )
    app = create_app(
        settings,
        loader=lambda name, s: (
            load_engine(name, s) if name == "csm" else ToneEngine(voices=("alloy", "tenor"))
        ),
    )
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def wait_ready(client: TestClient, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200:
            return response.json()  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("not ready")


def test_the_model_field_picks_the_engine_and_tts_1_is_the_first(two_engines: TestClient) -> None:
    for model in ("csm", "csm-1b", "tts-1"):
        response = two_engines.post(
            "/v1/audio/speech", json={"model": model, "input": "Hello.", "voice": "alloy"}
        )
        assert response.status_code == 200, response.text
        assert (
            response.headers["x-engine"] == "csm" and response.headers["x-sample-rate"] == "24000"
        )
        data, rate = soundfile.read(io.BytesIO(response.content))
        assert rate == 24000 and data.ndim == 1 and data.size > 0
    tone = two_engines.post(
        "/v1/audio/speech", json={"model": "tone", "input": "Hi.", "voice": "tenor"}
    )
    assert tone.status_code == 200 and tone.headers["x-engine"] == "tone"
    wrong = two_engines.post(
        "/v1/audio/speech", json={"model": "csm", "input": "Hi.", "voice": "tenor"}
    )
    assert wrong.status_code == 400 and "for the csm engine" in wrong.json()["error"]["message"]
    unknown = two_engines.post("/v1/audio/speech", json={"model": "gpt-9", "input": "Hi."})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "model"
    listed = two_engines.get("/v1/voices").json()
    assert {"csm", "tone"} == {voice["engine"] for voice in listed["voices"]}
    assert "csm-1b" in listed["models"]


def test_streamed_csm_speech_sends_frames_before_the_sentence_ends(
    two_engines: TestClient,
) -> None:
    payload = {"model": "csm", "input": "Hello there. Goodbye.", "voice": "0", "stream": True}
    with two_engines.stream(
        "POST", "/v1/audio/speech", json={**payload, "response_format": "pcm"}
    ) as response:
        assert response.status_code == 200 and response.headers["x-engine"] == "csm"
        pieces = [piece for piece in response.iter_bytes() if piece]
    # More than one chunk a sentence: the first is a few frames (3 x 80 ms at 24 kHz, 16 bit).
    assert len(pieces) > 4 and len(pieces[0]) == STREAM_FIRST_FRAMES * 1920 * 2
    samples = np.frombuffer(b"".join(pieces), dtype="<i2")
    assert samples.size > 2 * STREAM_FIRST_FRAMES * 1920
    with two_engines.stream(
        "POST", "/v1/audio/speech", json={**payload, "response_format": "mp3"}
    ) as response:
        mp3 = b"".join(response.iter_bytes())
    decoded, rate = soundfile.read(io.BytesIO(mp3), dtype="float32")
    assert rate == 24000 and decoded.size > samples.size * 0.9


def test_readiness_names_device_dtype_and_model_directory(
    two_engines: TestClient, model_dir: Path
) -> None:
    ready = two_engines.get("/readyz").json()
    csm = next(item for item in ready["engines"] if item["name"] == "csm")
    assert csm["device"] == "cpu" and csm["dtype"] == "float32" and csm["model"] == str(model_dir)


def test_the_chapter_endpoint_works_with_csm(two_engines: TestClient) -> None:
    response = two_engines.post(
        "/v1/audiobook/chapters",
        json={
            "model": "csm",
            "input": "One sentence. And another one.",
            "voice": "narrator",
            "response_format": "wav",
        },
    )
    assert response.status_code == 200, response.text
    report = json.loads(response.headers["x-audiobook-report"])
    assert report["engine"] == "csm" and report["sample_rate"] == 44100
    assert isinstance(report["sentences_at_length_bound"], list)


def test_readyz_is_503_while_a_model_loads_and_a_failed_load_stops_the_service(
    model_dir: Path,
) -> None:
    release = threading.Event()

    def slow(name: str, settings: ServiceSettings) -> Engine:
        release.wait(30)
        return load_engine(name, settings)

    settings = ServiceSettings(engines=("csm",), csm_model=str(model_dir), device="cpu")
    with TestClient(create_app(settings, loader=slow)) as client:
        loading = client.get("/readyz")
        assert loading.status_code == 503 and loading.json()["loading"] == ["csm"]
        early = client.post("/v1/audio/speech", json={"model": "csm", "input": "Hi.", "voice": "0"})
        assert early.status_code == 503 and early.headers["retry-after"]
        release.set()
        assert wait_ready(client)["status"] == "ready"
    failures: list[str] = []
    broken = ServiceSettings(engines=("csm",), csm_model="/nonexistent", device="cpu")
    with TestClient(create_app(broken, on_load_failure=failures.append)):
        for _ in range(100):
            if failures:
                break
            time.sleep(0.05)
    assert failures and "does not exist" in failures[0] and "\n" not in failures[0]


def test_a_compile_that_fails_leaves_the_layers_uncompiled_with_the_same_audio(
    engine: CsmEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image without a C compiler cannot build Triton's kernels: the engine says so once
    and decodes with the plain layers, the same audio."""
    from audiobook_tts.engines import csmfast, csmsampling

    def broken(*_args: object) -> object:
        raise RuntimeError("no C compiler for Triton")

    monkeypatch.setattr(csmfast, "compiled_parts", lambda: (broken, broken))
    monkeypatch.setattr(csmfast, "compiled_norm", lambda: broken)
    monkeypatch.setattr(csmfast, "compiled_pick", lambda: csmsampling.pick)
    trying = CsmEngine(engine.model, engine.processor, "cpu", references=engine.references)
    trying.compiled = True  # as on a GPU
    audio = trying.synthesize("Hi.", "0", 1.0)
    assert trying.compiled is False and trying.facts()["decoder"] == "fast"
    assert np.array_equal(audio.samples, engine.synthesize("Hi.", "0", 1.0).samples)
