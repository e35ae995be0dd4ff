"""Speech sent as it is made: the input's sentences synthesised one at a time, and each
sentence sent as soon as the engine has it, or chunk by chunk where the engine streams (csm's
`fast` decoder), as 16-bit PCM (behind a WAV header of unknown length for `wav`) or MP3.

The first audio leaves after the first chunk, not after the whole input. The request was
admitted before the first byte; the admission is released when the stream ends, whether it
ran out, failed or the client went away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import numpy as np

from audiobook_tts.audio import (
    Mp3Stream,
    Samples,
    output_rate,
    pcm16,
    resample,
    streaming_wav_header,
)
from audiobook_tts.chapter import SENTENCE_PAUSE, chunks, trim
from audiobook_tts.engines import Engine, EngineError
from audiobook_tts.engines.base import Audio, audio_chunks
from audiobook_tts.synthesis import Synthesis

logger = logging.getLogger("audiobook_tts.streaming")


def sentences(text: str) -> list[tuple[str, float]]:
    """(sentence, pause after it in seconds); the text itself when no sentence is found."""
    found = [(chunk.text, chunk.pause_after) for chunk in chunks(text)]
    return found or [(text.strip(), 0.0)]


class Encoder:
    """Samples at the engine's rate to the response's bytes, in order."""

    def __init__(self, response_format: str, engine_rate: int) -> None:
        self.format = response_format
        self.engine_rate = engine_rate
        self.rate = output_rate(response_format, engine_rate)
        self.mp3 = Mp3Stream(self.rate) if response_format == "mp3" else None

    def start(self) -> bytes:
        return streaming_wav_header(self.rate) if self.format == "wav" else b""

    def write(self, samples: Samples) -> bytes:
        resampled = resample(samples, self.engine_rate, self.rate)
        return self.mp3.write(resampled) if self.mp3 is not None else pcm16(resampled)

    def finish(self) -> bytes:
        return self.mp3.finish() if self.mp3 is not None else b""


def _next(chunks: Iterator[Audio]) -> Audio | None:
    return next(chunks, None)


async def speech_stream(
    synthesis: Synthesis,
    engine: Engine,
    text: str,
    voice: str,
    speed: float,
    response_format: str,
) -> AsyncIterator[bytes]:
    """Bytes of the response, chunk by chunk; releases the request's admission."""
    encoder: Encoder | None = None
    # An engine that streams hands out parts of a sentence: its silences are its own.
    whole_sentences = getattr(engine, "stream", None) is None
    try:
        for sentence, pause in sentences(text):
            pieces = audio_chunks(engine, sentence, voice, speed)
            # A whole sentence leaves with its pause, in one piece; a streamed one as it comes.
            held: list[Samples] = []
            try:
                while (audio := await synthesis.in_thread(_next, pieces)) is not None:
                    if encoder is None:
                        encoder = Encoder(response_format, audio.rate)
                        if header := encoder.start():
                            yield header
                    if whole_sentences:
                        held.append(trim(audio.samples))
                    elif audio.samples.size and (data := encoder.write(audio.samples)):
                        yield data
            finally:
                # Ends the engine's work on this sentence (and frees its lock) if we stopped.
                pieces.close()
            if encoder is not None:
                gap = int((pause or SENTENCE_PAUSE / 2) * encoder.engine_rate)
                if data := encoder.write(np.concatenate([*held, np.zeros(gap, dtype=np.float32)])):
                    yield data
        if encoder is not None and (data := encoder.finish()):
            yield data
    except EngineError as error:
        # The status line has gone: the stream ends early, and the log says why.
        logger.error("streamed synthesis stopped: %s", error)
    finally:
        synthesis.admission.release()
