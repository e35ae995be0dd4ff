"""A book file to its sections: EPUB 2 and 3 (through epub-extended), plain text, Markdown.

Chapters, titles, author, language and cover come from what the book declares: an EPUB's
navigation (nav, else NCX) and metadata; a Markdown file's `#` headings. Nothing is guessed
from the prose. Sections that are not read by default (a table of contents, one with no
text) are listed with the reason, so a reader can still choose them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import epubx
from lxml import html as lxml_html
from markdown_it import MarkdownIt

from audiobook_tts.books.archive import ArchiveLimits, BookRefused, check_epub_archive

EPUB_SUFFIXES = (".epub",)
TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
BOOK_SUFFIXES = (*EPUB_SUFFIXES, *TEXT_SUFFIXES, *MARKDOWN_SUFFIXES)
TABLE_OF_CONTENTS = "table of contents"
NO_TEXT = "no text"
# Blocks that are not prose to read: pictures, page numbers, markers, formulas.
UNSPOKEN_KINDS = {"figure", "page_break", "footnote_ref", "math"}
NOTE_ROLES = {"footnote", "footnote-body", "endnote", "rearnote"}


@dataclass(frozen=True)
class Section:
    """One entry of the book's navigation: its number in the listing (from 1), its title,
    the prose to speak, the footnotes' text, and why it is left out by default (or None)."""

    number: int
    title: str
    text: str
    notes: str = ""
    skipped_because: str | None = None

    def spoken(self, footnotes: bool = False) -> str:
        """The title, then the prose, then (when asked) the notes, as paragraphs."""
        parts = [self.title, self.text]
        if footnotes and self.notes:
            parts.append(f"Notes.\n\n{self.notes}")
        return "\n\n".join(part for part in parts if part.strip())

    def listing(self) -> dict[str, object]:
        return {
            "number": self.number,
            "title": self.title,
            "characters": len(self.text),
            "footnotes": bool(self.notes),
            "skipped_because": self.skipped_because,
        }


@dataclass(frozen=True)
class Cover:
    data: bytes
    media_type: str


@dataclass(frozen=True)
class Book:
    title: str
    author: str
    language: str
    sections: tuple[Section, ...]
    cover: Cover | None = None

    def numbers(self, spec: str, field: str) -> frozenset[int]:
        """Chapter numbers from "all", "" (none) or "3-5,7"."""
        if spec.strip().lower() == "all":
            return frozenset(section.number for section in self.sections)
        if not spec.strip():
            return frozenset()
        return frozenset(parse_chapter_numbers(spec, len(self.sections), field))

    def select(self, chapters: str = "") -> tuple[Section, ...]:
        """The sections to make: those read by default, or exactly the numbers given
        ("3-5", "1,4,7-9"); a chosen section with no text is refused."""
        if not chapters.strip():
            chosen = [section for section in self.sections if section.skipped_because is None]
            if not chosen:
                raise BookRefused("the book has no chapter with text to read", "no_text")
            return tuple(chosen)
        numbers = parse_chapter_numbers(chapters, len(self.sections), "chapters")
        chosen = [self.sections[number - 1] for number in numbers]
        for section in chosen:
            if not section.text.strip():
                raise BookRefused(
                    f"chapter {section.number} ({section.title!r}) has no text", "no_text"
                )
        return tuple(chosen)


def parse_chapter_numbers(spec: str, count: int, field: str) -> tuple[int, ...]:
    """ "3-5" or "1,4,7-9" to sorted chapter numbers, each within 1..count; a refusal names
    `field`, the option it came from."""
    numbers: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise BookRefused(f"{field}: {part!r} is not a number or a range like 3-5", field)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first > last:
            raise BookRefused(f"{field}: {part!r} runs backwards", field)
        if first < 1 or last > count:
            raise BookRefused(f"{field}: {part!r} is outside the book's chapters 1-{count}", field)
        numbers.update(range(first, last + 1))
    return tuple(sorted(numbers))


def read_book(path: Path, limits: ArchiveLimits | None = None) -> Book:
    """A book from an .epub, .txt or .md file; BookRefused for anything else."""
    suffix = path.suffix.lower()
    if suffix in EPUB_SUFFIXES:
        return read_epub(path, limits)
    if suffix in TEXT_SUFFIXES + MARKDOWN_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BookRefused(f"{path.name} is not UTF-8 text", "not_text") from None
        if "\x00" in text:
            raise BookRefused(f"{path.name} is not text (it holds NUL bytes)", "not_text")
        title = path.stem.replace("_", " ")
        if suffix in MARKDOWN_SUFFIXES:
            return read_markdown(text, title)
        return Book(title, "", "en", sections_of([(title, text)]))
    raise BookRefused(f"{path.name}: a book is {', '.join(BOOK_SUFFIXES)}", "not_epub")


def sections_of(parts: Iterable[tuple[str, str]], notes: Sequence[str] = ()) -> tuple[Section, ...]:
    sections = []
    for number, (title, text) in enumerate(parts, start=1):
        text = text.strip()
        note = notes[number - 1] if number <= len(notes) else ""
        sections.append(Section(number, title, text, note, None if text else NO_TEXT))
    return tuple(sections)


def read_markdown(source: str, title: str) -> Book:
    """`#` headings start chapters (their text the title); markup is dropped, paragraphs kept.
    Text before the first heading is a section titled by the book."""
    tokens = MarkdownIt("commonmark").parse(source)
    parts: list[tuple[str, list[str]]] = [(title, [])]
    in_heading_1 = False
    for token in tokens:
        if token.type == "heading_open":
            in_heading_1 = token.tag == "h1"
        elif token.type == "heading_close":
            in_heading_1 = False
        elif token.type == "inline":
            words = _inline_text(token)
            if in_heading_1:
                parts.append((words or f"Chapter {len(parts)}", []))
            elif words:
                parts[-1][1].append(words)
        elif token.type in ("code_block", "fence") and token.content.strip():
            parts[-1][1].append(token.content.strip())
    if not parts[0][1]:
        parts = parts[1:]  # nothing before the first heading: no opening section
    return Book(title, "", "en", sections_of((name, "\n\n".join(body)) for name, body in parts))


def _inline_text(token: object) -> str:
    children = getattr(token, "children", None) or []
    words = []
    for child in children:
        if child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            words.append(" ")
    return " ".join("".join(words).split())


def read_epub(path: Path, limits: ArchiveLimits | None = None) -> Book:
    check_epub_archive(path, limits)
    try:
        book = epubx.open_book(path)
    except epubx.EpubError as error:
        raise BookRefused(f"not an EPUB: {error}", "not_epub") from None
    try:
        return _epub_book(book)
    finally:
        book.close()


def _epub_book(book: epubx.Book) -> Book:
    reason = book.unsupported
    if reason and reason.startswith("drm:"):
        raise BookRefused(
            f"the EPUB is DRM-protected ({reason.removeprefix('drm:')}): it cannot be read",
            "drm",
        )
    metadata = book.metadata
    authors = [creator.name for creator in metadata.creators if creator.role in ("aut", "")]
    navigation_documents = {
        entry["href"] for entry in book.manifest.values() if "nav" in entry["properties"]
    }
    spine = list(book.chapters)
    position = {chapter.href: index for index, chapter in enumerate(spine)}
    # The navigation's entries in reading order, one per document they start in.
    starts: list[tuple[int, str]] = []
    seen: set[int] = set()
    for node in _flatten(book.toc):
        document = (node.href or "").split("#", 1)[0]
        index = position.get(document)
        if index is None or index in seen:
            continue
        seen.add(index)
        starts.append((index, " ".join(node.label.split()) or f"Chapter {len(starts) + 1}"))
    starts.sort()
    sections = []
    for number, (index, title) in enumerate(starts, start=1):
        end = starts[number][0] if number < len(starts) else len(spine)
        documents = spine[index:end]
        prose: list[str] = []
        notes: list[str] = []
        table_of_contents = False
        for chapter in documents:
            table_of_contents |= chapter.href in navigation_documents
            body, note, is_contents = _document_text(book, chapter, title)
            table_of_contents |= is_contents
            prose.extend(body)
            notes.extend(note)
        text = "\n\n".join(prose).strip()
        skipped = TABLE_OF_CONTENTS if table_of_contents else (None if text else NO_TEXT)
        sections.append(Section(number, title, text, "\n\n".join(notes), skipped))
    cover = None
    image = book.cover
    if image is not None:
        cover = Cover(image.read(), image.media_type or "image/jpeg")
    return Book(
        title=" ".join((metadata.title or Path(book.path).stem).split()),
        author=", ".join(authors),
        language=metadata.language or "en",
        sections=tuple(sections),
        cover=cover,
    )


def _flatten(nodes: Iterable[epubx.TocNode]) -> Iterable[epubx.TocNode]:
    for node in nodes:
        yield node
        yield from _flatten(node.children)


def _document_text(
    book: epubx.Book, chapter: epubx.Chapter, title: str
) -> tuple[list[str], list[str], bool]:
    """A content document's paragraphs, its notes' paragraphs, and whether it is a table of
    contents (a `toc` navigation in it)."""
    blocks = list(chapter.blocks)
    head_title = _head_title(book, chapter.href)
    # epub-extended reads the <head>'s <title> as a first paragraph: it is not prose.
    if blocks and head_title and blocks[0].kind == "paragraph" and blocks[0].text == head_title:
        blocks = blocks[1:]
    markers: list[str] = []
    prose: list[str] = []
    notes: list[str] = []
    is_contents = False
    for block in blocks:
        role = block.attributes.get("role")
        is_contents |= role in ("toc", "landmarks")
        if block.kind == "footnote_ref":
            if block.text and prose:
                prose[-1] = _without_marker(prose[-1], block.text)
            markers.append(block.text or "")
            continue
        if block.kind in UNSPOKEN_KINDS or block.attributes.get("element") in ("script", "style"):
            continue
        text = block.plain_text.strip()
        if not text:
            continue
        if block.attributes.get("footnote") or role in NOTE_ROLES:
            notes.append(text)
        elif block.kind == "heading" and _same(text, title) and not prose:
            continue  # the title is spoken from the navigation's label
        else:
            prose.append(text)
    return prose, notes, is_contents


def _head_title(book: epubx.Book, href: str) -> str:
    resource = book.resource(href)
    if resource is None:
        return ""
    try:
        document = lxml_html.fromstring(resource.read())
    except (ValueError, SyntaxError):
        return ""
    titles = document.xpath("//head/title")
    return " ".join((titles[0].text_content() if titles else "").split())


def _without_marker(text: str, marker: str) -> str:
    """A paragraph without its footnote marker, printed glued to the word before it."""
    pattern = re.compile(r"(?<=[^\s\d])" + re.escape(marker) + r"(?!\d)")
    matches = list(pattern.finditer(text))
    if not matches:
        return text
    last = matches[-1]
    return text[: last.start()] + text[last.end() :]


def _same(first: str, second: str) -> bool:
    return " ".join(first.split()).casefold() == " ".join(second.split()).casefold()
