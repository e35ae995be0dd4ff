"""What an uploaded EPUB must pass before anything reads it: a ZIP of a book, no bomb, no
entry that leaves its folder. Checked on the ZIP's central directory alone (Python's zipfile
never inflates an entry past the size that directory declares, so the declared sizes bound
what a later read can produce)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

EPUB_MIMETYPE = b"application/epub+zip"


class BookRefused(ValueError):
    """A book that is not made, with the reason in one line (a client error)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        # A word for machines (the API's `param`, tests): size, not_epub, drm, zip_bomb, ...
        self.reason = reason


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 10_000
    max_unpacked_bytes: int = 512 * 1024 * 1024
    # Deflate reaches ~1000:1 on zeros; text and XML stay under ~20:1.
    max_ratio: float = 100.0
    # Small entries may compress well (a CSS of repeated rules): the ratio counts above this.
    ratio_floor_bytes: int = 1024 * 1024


def escapes(name: str) -> bool:
    """An entry name that would land outside the folder it is unpacked into."""
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name).parts


def check_epub_archive(path: Path, limits: ArchiveLimits | None = None) -> None:
    """Refuse what is not an EPUB's ZIP, a ZIP bomb, or an entry whose path escapes."""
    limits = limits or ArchiveLimits()
    if not zipfile.is_zipfile(path):
        raise BookRefused("not an EPUB: the file is not a ZIP archive", "not_epub")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > limits.max_entries:
                raise BookRefused(
                    f"the EPUB has {len(entries)} entries; at most {limits.max_entries} are read",
                    "zip_bomb",
                )
            for entry in entries:
                if escapes(entry.filename):
                    raise BookRefused(
                        f"the EPUB's entry {entry.filename!r} points outside the book's folder",
                        "path_escape",
                    )
            unpacked = sum(entry.file_size for entry in entries)
            if unpacked > limits.max_unpacked_bytes:
                raise BookRefused(
                    f"the EPUB unpacks to {unpacked} bytes; at most "
                    f"{limits.max_unpacked_bytes} are read",
                    "zip_bomb",
                )
            for entry in entries:
                if entry.file_size <= limits.ratio_floor_bytes:
                    continue
                ratio = entry.file_size / max(entry.compress_size, 1)
                if ratio > limits.max_ratio:
                    raise BookRefused(
                        f"the EPUB's entry {entry.filename!r} inflates {ratio:.0f}:1 "
                        f"(at most {limits.max_ratio:.0f}:1): a ZIP bomb",
                        "zip_bomb",
                    )
            names = {entry.filename for entry in entries}
            if "mimetype" not in names or archive.read("mimetype").strip() != EPUB_MIMETYPE:
                raise BookRefused(
                    "not an EPUB: its ZIP has no `mimetype` entry saying application/epub+zip",
                    "not_epub",
                )
            if "META-INF/container.xml" not in names:
                raise BookRefused("not an EPUB: META-INF/container.xml is missing", "not_epub")
    except zipfile.BadZipFile as error:
        raise BookRefused(f"not an EPUB: a damaged ZIP ({error})", "not_epub") from None
