"""CSM's sampled decoding (top-k with temperature, seeded per sentence) on the tiny random
CSM, on the CPU: top-k 1 is greedy token for token; a seed gives the same codes alone, in a
batch and on the graph's path; the draws follow softmax(logits / temperature) over the top k
(chi-square at a stated significance); another seed gives another take."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from audiobook_tts.engines.base import SeededBatchEngine, SeededEngine, sentence_seed
from audiobook_tts.engines.csm import CsmEngine, text_seed
from audiobook_tts.engines.csmfast import FastCsmDecoder, capacity_for
from audiobook_tts.engines.csmrandom import save
from audiobook_tts.engines.csmsampling import (
    GREEDY,
    REFERENCE,
    Sampling,
    gumbel_noise,
    lanes,
    mix,
    pick,
    row_key,
)

torch = pytest.importorskip("torch")

# Upper 0.1% points of the chi-square distribution (a table's values): the tests below fail
# a correct sampler once in a thousand seeds' worth of draws, and the draws are fixed.
SIGNIFICANCE = 0.001
CHI_SQUARE_CRITICAL = {4: 18.467, 9: 27.877}
TEXTS = ["Hi.", "A much longer sentence, with many more words to say.", "Then rain."]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> CsmEngine:
    return CsmEngine.load(str(save(tmp_path_factory.mktemp("tiny-csm"))), "cpu")


def codes(
    engine: CsmEngine,
    texts: list[str],
    seeds: list[int],
    sampling: Sampling,
    frames: int = 16,
    use_graph: bool = False,
) -> Any:
    """(B, frames, codebooks) from a fresh decoder: the path the engine runs (a CUDA graph on
    a GPU, the same steps eagerly here)."""
    inputs = engine.inputs(texts, "0").to(engine.device)
    tokens = inputs["attention_mask"].shape[1] + frames
    decoder = FastCsmDecoder(engine.model, len(texts), capacity_for(tokens), sampling)
    return decoder.run(inputs, frames, use_graph=use_graph, seeds=seeds)


def paths(engine: CsmEngine) -> list[bool]:
    """The decoder's paths for this engine: eager always, the captured graph on a GPU."""
    return [False, True] if engine.device.startswith("cuda") else [False]


def test_the_engine_samples_as_the_makers_do_by_default_and_greedy_is_a_setting(
    engine: CsmEngine,
) -> None:
    assert engine.sampling == REFERENCE == Sampling(top_k=50, temperature=0.9)
    assert engine.facts()["sampling"] == "top-k 50, temperature 0.9, seeded per sentence"
    assert GREEDY.greedy and not REFERENCE.greedy
    assert isinstance(engine, SeededEngine) and isinstance(engine, SeededBatchEngine)
    with pytest.raises(ValueError, match="top-k 0"):
        Sampling(top_k=0)
    with pytest.raises(ValueError, match="temperature -1"):
        Sampling(temperature=-1.0)


def test_top_k_1_is_greedy_token_for_token(engine: CsmEngine) -> None:
    seeds = [sentence_seed(text) for text in TEXTS]
    greedy = codes(engine, TEXTS, seeds, GREEDY)
    for use_graph in paths(engine):
        top_1 = codes(engine, TEXTS, seeds, Sampling(top_k=1, temperature=0.9), use_graph=use_graph)
        assert torch.equal(top_1, greedy)
    # and transformers' own generate, sampling with k 1, is greedy too
    slow = CsmEngine(engine.model, engine.processor, "cpu", decoder="generate", sampling=GREEDY)
    slow_top_1 = CsmEngine(
        engine.model, engine.processor, "cpu", decoder="generate", sampling=Sampling(1, 0.9)
    )
    for one, other in zip(
        slow.generate(TEXTS[:2], "0", frames=6),
        slow_top_1.generate(TEXTS[:2], "0", frames=6),
        strict=True,
    ):
        assert np.array_equal(one.samples, other.samples)


def test_a_seed_gives_the_same_codes_alone_in_a_batch_and_on_every_path(
    engine: CsmEngine,
) -> None:
    seeds = [sentence_seed(text, 3) for text in TEXTS]
    together = codes(engine, TEXTS, seeds, REFERENCE)
    for use_graph in paths(engine):
        assert torch.equal(codes(engine, TEXTS, seeds, REFERENCE, use_graph=use_graph), together)
        for row, (text, seed) in enumerate(zip(TEXTS, seeds, strict=True)):
            alone = codes(engine, [text], [seed], REFERENCE, use_graph=use_graph)
            assert torch.equal(alone[0], together[row])
    # another order of the batch: each row keeps its own draws
    backwards = codes(engine, TEXTS[::-1], seeds[::-1], REFERENCE)
    assert torch.equal(backwards.flip(0), together)
    # sampled, not greedy: the codes are not the greedy ones
    assert not torch.equal(together, codes(engine, TEXTS, seeds, GREEDY))


def test_another_seed_gives_other_codes_and_the_engine_takes_it(engine: CsmEngine) -> None:
    text = TEXTS[1]
    first = codes(engine, [text], [sentence_seed(text, 0)], REFERENCE)
    second = codes(engine, [text], [sentence_seed(text, 1)], REFERENCE)
    assert not torch.equal(first, second)
    # most tokens differ: the draws are independent of each other
    assert float((first != second).float().mean()) > 0.5
    plain = engine.synthesize(text, "0", 1.0)
    same = engine.synthesize_seeded(text, "0", 1.0, text_seed(text, "0"))
    retry = engine.synthesize_seeded(text, "0", 1.0, sentence_seed("chapter-key" + text, 1))
    assert np.array_equal(plain.samples, same.samples)
    assert not np.array_equal(plain.samples, retry.samples)
    batch = engine.synthesize_batch_seeded(
        [TEXTS[0], text], "0", 1.0, [1, sentence_seed("chapter-key" + text, 1)]
    )
    assert np.array_equal(batch[1].samples, retry.samples)
    with pytest.raises(Exception, match="2 seeds for 1 texts"):
        engine.synthesize_batch_seeded([text], "0", 1.0, [1, 2])


def test_the_generate_fallback_samples_reproducibly_with_each_texts_seed(
    engine: CsmEngine,
) -> None:
    slow = CsmEngine(engine.model, engine.processor, "cpu", decoder="generate")
    seeds = [11, 12]
    batch = slow.generate(TEXTS[:2], "0", frames=6, seeds=seeds)
    again = slow.generate(TEXTS[:2], "0", frames=6, seeds=seeds)
    alone = slow.generate(TEXTS[1:2], "0", frames=6, seeds=seeds[1:])
    other = slow.generate(TEXTS[1:2], "0", frames=6, seeds=[13])
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(batch, again, strict=True))
    assert np.array_equal(batch[1].samples, alone[0].samples)
    assert not np.array_equal(alone[0].samples, other[0].samples)


def chi_square(tokens: Any, logits: Any, sampling: Sampling) -> float:
    """Pearson's statistic of `tokens` (N,) against softmax(logits / T) over the top k."""
    values, indices = logits.float().topk(sampling.top_k)
    expected = torch.softmax(values / sampling.temperature, dim=-1) * tokens.numel()
    assert bool(torch.isin(tokens, indices).all())  # never a token outside the top k
    observed = (tokens[:, None] == indices[None, :]).sum(dim=0).float()
    assert float(expected.min()) >= 5  # the test's own condition
    return float(((observed - expected) ** 2 / expected).sum())


def test_draws_follow_softmax_over_the_top_k_at_each_position() -> None:
    """Many seeds' draws at several frames and codebooks (positions), against fixed logits:
    each position's token frequencies pass Pearson's chi-square test at 0.1%."""
    sampling = Sampling(top_k=5, temperature=0.9)
    generator = torch.Generator().manual_seed(0)
    codebooks, draws = 3, 20_000
    logits = torch.randn(codebooks, 40, generator=generator) * 1.5
    keys = torch.tensor([row_key(sentence_seed(f"s{n}")) for n in range(draws)])
    lane_keys = lanes(codebooks, sampling.top_k, "cpu")
    critical = CHI_SQUARE_CRITICAL[sampling.top_k - 1]
    for step in (0, 1, 97):
        noise = gumbel_noise(keys, torch.tensor([step]), lane_keys).view(draws, codebooks, -1)
        for book in range(codebooks):
            tokens = pick(logits[book].expand(draws, -1), noise[:, book], sampling)
            assert chi_square(tokens, logits[book], sampling) < critical, (step, book)
    # the noise itself: its uniforms have mean 1/2 and neighbouring lanes are uncorrelated
    noise = gumbel_noise(keys[:1000], torch.tensor([5]), lane_keys)
    uniform = torch.exp(-torch.exp(-noise))
    assert abs(float(uniform.mean()) - 0.5) < 0.01
    centred = uniform - 0.5
    assert abs(float((centred[:, 1:] * centred[:, :-1]).mean() / centred.var())) < 0.05
    assert mix(12345) == int(mix(torch.tensor([12345]))[0])  # Python and tensors agree


def test_the_decoders_first_draws_follow_the_models_distribution(engine: CsmEngine) -> None:
    """Codebook 0 of frame 0, drawn by the decoder for one prompt under many seeds, against
    softmax(the model's logits / T) over the top k: chi-square at 0.1%."""
    sampling = Sampling(top_k=10, temperature=0.9)
    rows = 1500
    single = engine.inputs(["Once upon a time."], "0")
    inputs = {name: value.expand(rows, *value.shape[1:]) for name, value in single.items()}
    decoder = FastCsmDecoder(
        engine.model, rows, capacity_for(single["input_ids"].shape[1] + 1), sampling
    )
    with torch.inference_mode():
        logits = engine.model(**single).logits[0, -1]
        decoder.prefill(inputs, [sentence_seed(f"row {row}") for row in range(rows)])
    statistic = chi_square(decoder.codes[:, 0], logits, sampling)
    assert statistic < CHI_SQUARE_CRITICAL[sampling.top_k - 1]
