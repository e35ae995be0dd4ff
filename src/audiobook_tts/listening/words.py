"""Text to the words a comparison counts: Whisper's own English normaliser on both sides.

Whisper writes "thirteen" as "13", "colour" as "color" and "Mr." as "mister"; the book
says what the author wrote. whisper-normalizer (MIT) is OpenAI's normaliser, packaged apart
from the model: the same rules the Whisper paper scored its word error rates with. Each
sentence (and each heard segment) is normalised on its own, since the normaliser joins
numbers across a full stop ("thirteen. Forty" would read as 1340).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=1)
def _normaliser() -> Callable[[str], str]:
    # The listener's lock: imported on first use, so that an image without it still serves.
    from whisper_normalizer.english import EnglishTextNormalizer

    normaliser: Callable[[str], str] = EnglishTextNormalizer()
    return normaliser


def normal_words(text: str) -> tuple[str, ...]:
    """The words of `text` as a comparison counts them: lower case, no punctuation, numbers
    as digits, British spellings as American."""
    # Symbols the normaliser keeps ("…" becomes "..") are not words anyone says.
    return tuple(word for word in _normaliser()(text).split() if any(c.isalnum() for c in word))
