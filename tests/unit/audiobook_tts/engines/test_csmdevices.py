"""The csm engine over several devices (`MultiCsmEngine`), on the CPU with the tiny random
CSM (two engines sharing one model stand in for two GPUs): a batch is dealt in contiguous
parts and the audio comes back in the order given, each sentence as one engine makes it;
devices are parsed and checked with one-line errors; the settings reach the loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiobook_tts.config import ServiceSettings, SettingsError
from audiobook_tts.engines import load_engine
from audiobook_tts.engines.base import EngineError, SeededBatchEngine, sentence_seed
from audiobook_tts.engines.csm import CsmEngine
from audiobook_tts.engines.csmdevices import MultiCsmEngine, deal, parse_devices, pick_devices
from audiobook_tts.engines.csmrandom import save
from audiobook_tts.engines.csmsampling import Sampling

pytest.importorskip("torch")

TEXTS = [
    "Hi.",
    "Then rain.",
    "A much longer sentence, with many more words to say.",
    "The river rose.",
    "She lit the lamp and waited.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(tmp_path_factory.mktemp("tiny-csm"))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> CsmEngine:
    return CsmEngine.load(str(model_dir), "cpu", batch_size=2)


def test_a_batch_is_dealt_across_devices_and_comes_back_in_order(engine: CsmEngine) -> None:
    twin = CsmEngine(engine.model, engine.processor, "cpu", batch_size=2)
    spread = MultiCsmEngine([engine, twin])
    assert isinstance(spread, SeededBatchEngine)
    assert spread.batch_size == 4 and spread.facts()["devices"] == "2"
    together = spread.synthesize_batch(TEXTS, "0", 1.0)
    # 5 sentences on 2 devices: 3 on the first, 2 on the second, each as one engine makes them
    first = engine.synthesize_batch(TEXTS[:3], "0", 1.0)
    second = twin.synthesize_batch(TEXTS[3:], "0", 1.0)
    for one, other in zip(together, first + second, strict=True):
        assert np.array_equal(one.samples, other.samples)
    seeds = [sentence_seed(text, 2) for text in TEXTS[:2]]
    retaken = spread.synthesize_batch_seeded(TEXTS[:2], "0", 1.0, seeds)
    assert np.array_equal(
        retaken[1].samples, engine.synthesize_seeded(TEXTS[1], "0", 1.0, seeds[1]).samples
    )
    assert np.array_equal(spread.synthesize(TEXTS[0], "0", 1.0).samples, together[0].samples)
    with pytest.raises(EngineError, match="1 seeds for 2 texts"):
        spread.synthesize_batch_seeded(TEXTS[:2], "0", 1.0, [1])


def test_deal_cuts_contiguous_even_runs() -> None:
    assert deal(5, 2) == [range(0, 3), range(3, 5)]
    assert deal(2, 4) == [range(0, 1), range(1, 2)]
    assert deal(8, 8) == [range(index, index + 1) for index in range(8)]


def test_devices_are_parsed_and_checked_in_one_line() -> None:
    assert parse_devices("cuda:0, 1") == ["cuda:0", "cuda:1"]
    assert pick_devices("", "", 0) == ["cpu"]
    assert pick_devices("", "", 2) == ["cuda:0", "cuda:1"]
    assert pick_devices("", "cuda:1", 2) == ["cuda:1"]
    assert pick_devices("cpu", "cuda", 2) == ["cpu"]
    for value, message in (
        ("gpu0", "not a device"),
        ("0,cuda:0", "named twice"),
    ):
        with pytest.raises(EngineError, match=message):
            parse_devices(value)
    with pytest.raises(EngineError, match="torch sees 1 GPU"):
        pick_devices("cuda:1", "", 1)


def test_the_settings_reach_the_engine(model_dir: Path) -> None:
    settings = ServiceSettings.from_environ(
        {
            "AUDIOBOOK_TTS_CSM_MODEL": str(model_dir),
            "AUDIOBOOK_TTS_CSM_DEVICES": "cpu",
            "AUDIOBOOK_TTS_CSM_TOP_K": "7",
            "AUDIOBOOK_TTS_CSM_TEMPERATURE": "0",
            "AUDIOBOOK_TTS_CSM_COMPILE": "0",
        }
    )
    loaded = load_engine("csm", settings)
    assert isinstance(loaded, CsmEngine) and loaded.device == "cpu"
    assert loaded.sampling == Sampling(7, 0.0) and loaded.facts()["sampling"] == "greedy"
    for name, value, message in (
        ("AUDIOBOOK_TTS_CSM_TEMPERATURE", "warm", "is not a number"),
        ("AUDIOBOOK_TTS_CSM_COMPILE", "maybe", "use 1 or 0"),
        ("AUDIOBOOK_TTS_CSM_TOP_K", "many", "is not a whole number"),
    ):
        with pytest.raises(SettingsError, match=message):
            ServiceSettings.from_environ({name: value})
    bad = ServiceSettings(csm_model=str(model_dir), csm_devices="cpu", csm_top_k=0)
    with pytest.raises(EngineError, match="top-k 0"):
        load_engine("csm", bad)
