"""The service's command line: serve, worker, healthcheck, chapter, book."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from audiobook_tts.app import create_app
from audiobook_tts.audio import FORMATS, encode
from audiobook_tts.books.archive import BookRefused
from audiobook_tts.books.making import (
    BOOK_JSON,
    M4B_NAME,
    BookRequest,
    ChapterStore,
    make_book,
    plan_chapters,
)
from audiobook_tts.books.progressbars import BookProgressBars
from audiobook_tts.books.queue import run_worker
from audiobook_tts.books.reading import read_book
from audiobook_tts.chapter import ChapterError, render_chapter
from audiobook_tts.config import ENGINE_NAMES, ServiceSettings, SettingsError, choose_book_engine
from audiobook_tts.engines import EngineError, check_engine, load_engine
from audiobook_tts.healthcheck import check
from audiobook_tts.lexicon import Lexicon, LexiconError


def _settings() -> ServiceSettings | None:
    try:
        return ServiceSettings.from_environ()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    try:
        for name in settings.engines:
            check_engine(name, settings)  # a missing model file: one line, before any loading
    except EngineError as error:
        print(f"error: the {name} engine cannot start: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    try:
        app = create_app(settings)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM itself: in-flight requests finish, then the process exits.
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=8)
    return 0


def _worker(_: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    return run_worker(settings)


def _healthcheck(args: argparse.Namespace) -> int:
    return check(args.port, args.timeout)


def _chapter(args: argparse.Namespace) -> int:
    source = Path(args.text)
    output = Path(args.output)
    if not 0.25 <= args.speed <= 4.0:
        print("error: --speed must be between 0.25 and 4.0", file=sys.stderr)
        return 2
    response_format = args.format or output.suffix.lstrip(".").lower()
    if response_format not in ("mp3", "wav", "flac"):
        print(
            f"error: output format {response_format!r}: use .mp3, .wav or .flac "
            f"(or --format); the API also offers {', '.join(FORMATS)}",
            file=sys.stderr,
        )
        return 2
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: cannot read {source}: {error}", file=sys.stderr)
        return 2
    if args.lexicon:
        try:
            text = Lexicon.parse(Path(args.lexicon).read_text(encoding="utf-8")).apply(text)
        except (OSError, UnicodeDecodeError, LexiconError) as error:
            print(f"error: lexicon {args.lexicon}: {error}", file=sys.stderr)
            return 2
    settings = _settings()
    if settings is None:
        return 2
    try:
        engine = load_engine(args.engine, settings)
        voices = {voice.id for voice in engine.voices()}
        if args.voice not in voices:
            print(
                f"error: unknown voice {args.voice!r}; valid: {', '.join(sorted(voices))}",
                file=sys.stderr,
            )
            return 2

        def progress(done: int, total: int) -> None:
            if done == total or done % 20 == 0:
                print(f"  {done}/{total} sentences", file=sys.stderr, flush=True)

        rendered = render_chapter(engine, text, args.voice, args.speed, progress)
    except (EngineError, ChapterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".part")
    temporary.write_bytes(encode(rendered.samples, rendered.rate, response_format))
    temporary.replace(output)  # never a half-written chapter under the real name
    report = {**rendered.report(), "format": response_format, "source": str(source)}
    output.with_name(output.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    for sentence in rendered.at_length_bound:
        print(f"warning: reached the length bound: {sentence[:80]}", file=sys.stderr)
    return 0 if rendered.levels.meets_acx() else 3


def _book(args: argparse.Namespace) -> int:
    source = Path(args.book)
    output = Path(args.output) if args.output else None
    if not 0.25 <= args.speed <= 4.0:
        print("error: --speed must be between 0.25 and 4.0", file=sys.stderr)
        return 2
    settings = _settings()
    if settings is None:
        return 2
    lexicon_path = Path(args.lexicon) if args.lexicon else source.with_name("lexicon.tsv")
    try:
        if not source.is_file():
            raise BookRefused(f"{source}: no such file", "missing")
        if source.stat().st_size > settings.max_book_bytes:
            raise BookRefused(
                f"{source} is {source.stat().st_size} bytes; at most {settings.max_book_bytes} "
                f"(AUDIOBOOK_TTS_MAX_BOOK_BYTES)",
                "size",
            )
        book = read_book(source)
        if args.list:
            for section in book.sections:
                why = f"  (skipped: {section.skipped_because})" if section.skipped_because else ""
                print(
                    f"{section.number:3d}  {section.title}  [{len(section.text)} characters]{why}"
                )
            return 0
        lexicon = Lexicon()
        if args.lexicon or lexicon_path.exists():
            lexicon = Lexicon.parse(lexicon_path.read_text(encoding="utf-8"))
            print(f"lexicon: {lexicon_path}", file=sys.stderr)
        planned = plan_chapters(book, args.chapters or "", args.footnotes, lexicon)
    except (OSError, UnicodeDecodeError, LexiconError) as error:
        print(f"error: {lexicon_path}: {error}", file=sys.stderr)
        return 2
    except BookRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if output is None:
        print("error: -o/--output is required (a folder for the book's files)", file=sys.stderr)
        return 2
    # The command line loads the engine it is asked for, beside those of the settings.
    asked = (args.engine,) if args.engine else ()
    name = choose_book_engine(args.engine or "", (*settings.engines, *asked))
    try:
        engine = load_engine(name, settings)
        voices = {voice.id for voice in engine.voices()}
        if args.voice not in voices:
            print(
                f"error: unknown voice {args.voice!r} for {name}; valid: "
                f"{', '.join(sorted(voices))}",
                file=sys.stderr,
            )
            return 2
        store = ChapterStore(Path(args.store) if args.store else output / ".chapters")
        print(
            f"{book.title}: {len(planned)} chapters, {name} voice {args.voice} -> {output}",
            file=sys.stderr,
        )
        with BookProgressBars(len(planned)) as bars:
            description = make_book(
                book,
                planned,
                engine,
                BookRequest(args.voice, args.speed),
                store,
                output,
                on_progress=bars.update,
            )
    except KeyboardInterrupt:
        print(
            "\nstopped; the chapters made are kept: run the same command again to go on",
            file=sys.stderr,
        )
        return 130
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for chapter in description["chapters"]:  # type: ignore[attr-defined]
        mark = "ok" if chapter["meets_acx"] else "FAILS ACX"
        print(
            f"  {chapter['file']}  {chapter['duration_seconds']:8.1f} s  RMS {chapter['rms_db']} dB"
            f"  peak {chapter['peak_dbfs']} dBFS  floor {chapter['noise_floor_db']} dB  {mark}  "
            f"{chapter['title']}",
            file=sys.stderr,
        )
        for sentence in chapter["sentences_at_length_bound"]:
            print(f"  warning: reached the length bound: {sentence[:80]}", file=sys.stderr)
    print(f"{output / M4B_NAME}, {output / BOOK_JSON}", file=sys.stderr)
    return 0 if description["meets_acx"] else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiobook-tts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="address to listen on (default: AUDIOBOOK_TTS_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: AUDIOBOOK_TTS_PORT)")
    serve.set_defaults(handler=_serve)
    worker = commands.add_parser(
        "worker",
        help="make book jobs from the queue (AUDIOBOOK_TTS_QUEUE) with the engines of "
        "AUDIOBOOK_TTS_ENGINES, files on the shared volume (AUDIOBOOK_TTS_DATA); "
        "run as many as there are GPUs or cores",
    )
    worker.set_defaults(handler=_worker)
    health = commands.add_parser("healthcheck", help="exit 0 when the local API answers /healthz")
    health.add_argument("--port", type=int, help="port of the API (default: AUDIOBOOK_TTS_PORT)")
    health.add_argument("--timeout", type=float, default=4.0, help="seconds to wait")
    health.set_defaults(handler=_healthcheck)
    chapter = commands.add_parser(
        "chapter", help="a chapter's text file to one mastered audiobook file (ACX levels)"
    )
    chapter.add_argument("text", help="UTF-8 text; blank lines separate paragraphs")
    chapter.add_argument(
        "-o", "--output", required=True, help="audio file to write (.mp3, .wav, .flac)"
    )
    chapter.add_argument(
        "--format", choices=("mp3", "wav", "flac"), help="default: from -o's suffix"
    )
    chapter.add_argument("--voice", default="alloy", help="voice id (GET /v1/voices lists them)")
    chapter.add_argument("--speed", type=float, default=1.0, help="0.25 to 4.0")
    chapter.add_argument(
        "--lexicon",
        help="lexicon.tsv: `word<TAB>respelling` (or [[espeak-ng phonemes]]) a line, "
        "applied before synthesis",
    )
    chapter.add_argument(
        "--engine",
        default="espeak",
        choices=ENGINE_NAMES,
        help="speech engine (csm reads AUDIOBOOK_TTS_CSM_MODEL)",
    )
    chapter.set_defaults(handler=_chapter)
    book = commands.add_parser(
        "book",
        help="a whole book (.epub, .txt, .md) to chapter MP3s at ACX levels, an M4B with "
        "chapters and book.json; run it again to go on after Ctrl-C",
    )
    book.add_argument("book", help="the book: EPUB 2 or 3, UTF-8 text, or Markdown (# chapters)")
    book.add_argument("-o", "--output", help="folder for the chapter MP3s, book.m4b, book.json")
    book.add_argument("--list", action="store_true", help="list the book's chapters and stop")
    book.add_argument(
        "--chapters", help='chapter numbers to make, e.g. "3-5" or "1,4,7-9" (see --list)'
    )
    book.add_argument(
        "--footnotes",
        nargs="?",
        const="all",
        default="",
        metavar="CHAPTERS",
        help="read the footnotes at the end of their chapter: of every chapter, or of those "
        'named ("3-5"); default: none',
    )
    book.add_argument("--voice", default="alloy", help="voice id (GET /v1/voices lists them)")
    book.add_argument("--speed", type=float, default=1.0, help="0.25 to 4.0")
    book.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        help="speech engine (default: csm with a model set, else piper when installed, else "
        "espeak)",
    )
    book.add_argument(
        "--lexicon",
        help="lexicon.tsv (`word<TAB>respelling` a line; default: lexicon.tsv beside the book)",
    )
    book.add_argument("--store", help="where made chapters are kept (default: OUTPUT/.chapters)")
    book.set_defaults(handler=_book)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result
