"""Speech sent as it is made: the input's sentences synthesised one at a time, each sent as
16-bit PCM (behind a WAV header of unknown length for `wav`) as soon as it is ready.

The first audio leaves after the first sentence, not after the whole input. The request was
admitted before the first byte; the admission is released when the stream ends, whether it
ran out, failed or the client went away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import numpy as np

from audiobook_tts.audio import output_rate, pcm16, resample, streaming_wav_header
from audiobook_tts.chapter import SENTENCE_PAUSE, chunks, trim
from audiobook_tts.engines import Engine, EngineError
from audiobook_tts.synthesis import Synthesis

logger = logging.getLogger("audiobook_tts.streaming")


def sentences(text: str) -> list[tuple[str, float]]:
    """(sentence, pause after it in seconds); the text itself when no sentence is found."""
    found = [(chunk.text, chunk.pause_after) for chunk in chunks(text)]
    return found or [(text.strip(), 0.0)]


async def speech_stream(
    synthesis: Synthesis,
    engine: Engine,
    text: str,
    voice: str,
    speed: float,
    response_format: str,
) -> AsyncIterator[bytes]:
    """Bytes of the response, sentence by sentence; releases the request's admission."""
    try:
        rate = 0
        for sentence, pause in sentences(text):
            audio = await synthesis.in_thread(engine.synthesize, sentence, voice, speed)
            if not rate:
                rate = output_rate(response_format, audio.rate)
                if response_format == "wav":
                    yield streaming_wav_header(rate)
            spoken = resample(trim(audio.samples), audio.rate, rate)
            gap = np.zeros(int((pause or SENTENCE_PAUSE / 2) * rate), dtype=np.float32)
            yield pcm16(np.concatenate([spoken, gap]))
    except EngineError as error:
        # The status line has gone: the stream ends early, and the log says why.
        logger.error("streamed synthesis stopped: %s", error)
    finally:
        synthesis.admission.release()
