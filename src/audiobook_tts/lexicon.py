"""A pronunciation lexicon: words said another way, applied to the text before synthesis.

`lexicon.tsv`: one `word<TAB>how to say it` a line (`#` starts a comment). How to say it is
a respelling (`Cholmondeley	Chumley`), which every engine reads, or espeak-ng phonemes in
double brackets (`Cholmondeley	[[tS'Vmli]]`), which espeak-ng reads as phonemes (and the
piper engine, whose phonemes espeak-ng makes, too). Whole words only, any letter case;
longer entries win over shorter ones that they contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ENTRIES = 10_000
MAX_FIELD = 200
# What the API's schema allows, in explicit classes (Python, pydantic's Rust engine and the
# schema's ECMA readers disagree on what `\s` is): a word with something other than a space,
# no tab, line break or `#`; a saying likewise, brackets only as a whole `[[phonemes]]`.
WORD_PATTERN = r"^[^\t\r\n#]*[^ \t\r\n\f\v#][^\t\r\n#]*$"
SAYING_PATTERN = r"^(\[\[[^\[\]\t\r\n]+\]\]|[^\[\]\t\r\n#]*[^ \t\r\n\f\v\[\]#][^\[\]\t\r\n#]*)$"
# At most this many entries in one API request (a lexicon.tsv may hold MAX_ENTRIES): the
# request must stay under the service's body limit.
MAX_REQUEST_ENTRIES = 1_000


class LexiconError(ValueError):
    """A lexicon that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Lexicon:
    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Lexicon:
        entries: dict[str, tuple[str, str]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            content = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
            if not content.strip():
                continue
            word, tab, saying = content.partition("\t")
            word, saying = word.strip(), saying.strip()
            if not tab or not word or not saying:
                raise LexiconError(f"lexicon line {number}: use `word<TAB>how to say it`")
            if len(word) > MAX_FIELD or len(saying) > MAX_FIELD:
                raise LexiconError(f"lexicon line {number}: at most {MAX_FIELD} characters a field")
            if saying.startswith("[[") != saying.endswith("]]"):
                raise LexiconError(f"lexicon line {number}: phonemes go in [[double brackets]]")
            entries[word.casefold()] = (word, saying)
        if len(entries) > MAX_ENTRIES:
            raise LexiconError(f"the lexicon has {len(entries)} entries; at most {MAX_ENTRIES}")
        return cls(tuple(entries.values()))

    @classmethod
    def of(cls, mapping: dict[str, str]) -> Lexicon:
        """From the API's `{"word": "saying"}`; a pair the schema would refuse is named."""
        entries: dict[str, tuple[str, str]] = {}
        for word, saying in mapping.items():
            if not re.fullmatch(WORD_PATTERN, word) or len(word) > MAX_FIELD:
                raise LexiconError(
                    f"lexicon word {word[:40]!r}: 1-{MAX_FIELD} characters, "
                    "not blank, no tab, line break or #"
                )
            if not re.fullmatch(SAYING_PATTERN, saying) or len(saying) > MAX_FIELD:
                raise LexiconError(
                    f"lexicon entry {word[:40]!r}: say it in 1-{MAX_FIELD} "
                    "characters, or as [[espeak-ng phonemes]]"
                )
            entries[word.casefold()] = (word, saying)
        if len(entries) > MAX_ENTRIES:
            raise LexiconError(f"the lexicon has {len(entries)} entries; at most {MAX_ENTRIES}")
        return cls(tuple(entries.values()))

    def apply(self, text: str) -> str:
        """`text` with every listed word (whole word, any case) said as the lexicon says."""
        if not self.entries:
            return text
        by_word = {word.casefold(): saying for word, saying in self.entries}
        words = sorted(by_word, key=len, reverse=True)
        pattern = re.compile(
            r"(?<!\w)(" + "|".join(re.escape(word) for word in words) + r")(?!\w)",
            re.IGNORECASE,
        )
        return pattern.sub(lambda match: by_word[match.group(0).casefold()], text)
