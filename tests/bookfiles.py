"""Books the tests make: a small EPUB 3 (with an EPUB 2 NCX beside its nav), and hostile ones.

Written with zipfile, as a publisher's tool would: the service reads them with its EPUB
library. The three chapters hold Unicode, the second a footnote; the book has a cover.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Mapping

TITLE = "Ünïcode Tales"
AUTHOR = "Zoë Brontë"
CHAPTERS = (
    (
        "The Café",
        "Zoë walked into the café on a grey morning. She ordered a crème brûlée and sat "
        "by the window.\n\nThe rain had not stopped for three days.",
    ),
    (
        "A Naïve Plan",
        "Her plan was naïve, she knew that. Still, she wrote it down in her notebook.",
    ),
    (
        "Über Alles",
        "In the end, the plan worked. Nobody was more surprised than Zoë herself.",
    ),
)
FOOTNOTE = "Written on the back of a receipt."
FOOTNOTE_MARKER = "1"


def png(width: int = 32, height: int = 32, colour: tuple[int, int, int] = (180, 40, 40)) -> bytes:
    """A plain PNG of one colour."""
    raw = b"".join(b"\x00" + bytes(colour) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""


def _page(title: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>{title}</title></head>
<body>
{body}
</body>
</html>
"""


def _chapter_page(number: int, title: str, text: str) -> str:
    paragraphs = [f"<p>{part}</p>" for part in text.split("\n\n")]
    if number == 2:
        # A footnote: the marker in the text, the note in an aside (EPUB 3 semantics).
        paragraphs[0] = paragraphs[0].replace(
            "notebook.</p>",
            f'notebook.<a epub:type="noteref" href="#fn1" id="ref1">{FOOTNOTE_MARKER}</a></p>',
        )
        paragraphs.append(f'<aside epub:type="footnote" id="fn1"><p>{FOOTNOTE}</p></aside>')
    return _page(title, f"<h1>{title}</h1>\n" + "\n".join(paragraphs))


def epub(
    chapters: tuple[tuple[str, str], ...] = CHAPTERS,
    title: str = TITLE,
    author: str = AUTHOR,
    cover: bytes | None = None,
    extra: Mapping[str, bytes] | None = None,
    nav: bool = True,
) -> bytes:
    """An EPUB 3 of the chapters: cover page and table of contents in the spine, nav and NCX
    listing the table of contents and the chapters (as real books have them)."""
    cover = png() if cover is None else cover
    items = [
        ("cover", "cover.xhtml", "application/xhtml+xml", ""),
        ("cover-image", "cover.png", "image/png", ' properties="cover-image"'),
        # EPUB 2 has no nav document: its table of contents is the NCX alone.
        ("nav", "nav.xhtml", "application/xhtml+xml", ' properties="nav"' if nav else ""),
        ("ncx", "toc.ncx", "application/x-dtbncx+xml", ""),
    ]
    items += [
        (f"ch{number}", f"ch{number}.xhtml", "application/xhtml+xml", "")
        for number in range(1, len(chapters) + 1)
    ]
    manifest = "\n".join(
        f'    <item id="{key}" href="{href}" media-type="{kind}"{extra_attributes}/>'
        for key, href, kind, extra_attributes in items
    )
    spine = "\n".join(
        f'    <itemref idref="{key}"/>'
        for key in ["cover", "nav", *(f"ch{n}" for n in range(1, len(chapters) + 1))]
    )
    version = "3.0" if nav else "2.0"
    opf = f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="{version}" unique-identifier="uid">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="uid">urn:uuid:7d3c1b9e-0000-4000-8000-000000000001</dc:identifier>
    <dc:title>{title}</dc:title>
    <dc:creator>{author}</dc:creator>
    <dc:language>en</dc:language>
    <meta property="dcterms:modified">2026-01-01T00:00:00Z</meta>
    <meta name="cover" content="cover-image"/>
  </metadata>
  <manifest>
{manifest}
  </manifest>
  <spine toc="ncx">
{spine}
  </spine>
</package>
"""
    # Like many books, the navigation lists its own table of contents first.
    links = '      <li><a href="nav.xhtml">Contents</a></li>\n' + "\n".join(
        f'      <li><a href="ch{n}.xhtml">{name}</a></li>'
        for n, (name, _) in enumerate(chapters, start=1)
    )
    nav_page = _page(
        "Contents",
        f'<nav epub:type="toc" id="toc"><h1>Contents</h1>\n    <ol>\n{links}\n    </ol>\n</nav>',
    )
    points = '    <navPoint id="p0" playOrder="0"><navLabel><text>Contents</text></navLabel>'
    points += '<content src="nav.xhtml"/></navPoint>\n' + "\n".join(
        f'    <navPoint id="p{n}" playOrder="{n}"><navLabel><text>{name}</text></navLabel>'
        f'<content src="ch{n}.xhtml"/></navPoint>'
        for n, (name, _) in enumerate(chapters, start=1)
    )
    ncx = f"""<?xml version="1.0" encoding="UTF-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">
  <head><meta name="dtb:uid" content="urn:uuid:7d3c1b9e-0000-4000-8000-000000000001"/></head>
  <docTitle><text>{title}</text></docTitle>
  <navMap>
{points}
  </navMap>
</ncx>
"""
    files: dict[str, bytes] = {
        "META-INF/container.xml": CONTAINER.encode(),
        "OEBPS/content.opf": opf.encode(),
        "OEBPS/nav.xhtml": nav_page.encode(),
        "OEBPS/toc.ncx": ncx.encode(),
        "OEBPS/cover.png": cover,
        "OEBPS/cover.xhtml": _page("Cover", '<img src="cover.png" alt="Cover"/>').encode(),
    }
    for number, (name, text) in enumerate(chapters, start=1):
        files[f"OEBPS/ch{number}.xhtml"] = _chapter_page(number, name, text).encode()
    files.update(extra or {})
    return zip_of(files)


def zip_of(files: Mapping[str, bytes], mimetype: bytes = b"application/epub+zip") -> bytes:
    """An EPUB's ZIP: the mimetype first and stored, the rest deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, zipfile.ZIP_STORED)
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


# DRM as Adobe ADEPT leaves it: an encrypted key, and the chapters encrypted with it.
ENCRYPTION_WITH_KEY = """<?xml version="1.0" encoding="UTF-8"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
            xmlns:enc="http://www.w3.org/2001/04/xmlenc#"
            xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <enc:EncryptedData>
    <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
    <ds:KeyInfo>
      <enc:EncryptedKey>
        <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-1_5"/>
        <enc:CipherData><enc:CipherValue>c2VjcmV0</enc:CipherValue></enc:CipherData>
      </enc:EncryptedKey>
    </ds:KeyInfo>
    <enc:CipherData><enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData>
  </enc:EncryptedData>
</encryption>
"""


def drm_epub() -> bytes:
    return epub(extra={"META-INF/encryption.xml": ENCRYPTION_WITH_KEY.encode()})


def escaping_epub() -> bytes:
    """An entry whose path leaves the book's directory."""
    return epub(extra={"../../escaped.txt": b"out of bounds"})


def zip_bomb(unpacked_bytes: int = 200 * 1024 * 1024) -> bytes:
    """An EPUB-looking ZIP with one entry of zeros that deflates ~1000:1."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")
        info = zipfile.ZipInfo("OEBPS/zeros.xhtml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as entry:
            block = bytes(1024 * 1024)
            for _ in range(unpacked_bytes // len(block)):
                entry.write(block)
    return buffer.getvalue()


def many_entries(count: int) -> bytes:
    return epub(extra={f"OEBPS/x/{n}.txt": b"x" for n in range(count)})
