"""The service's command line: serve, worker, healthcheck, chapter, book, check."""

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
from audiobook_tts.chapter import ChapterError
from audiobook_tts.config import ENGINE_NAMES, ServiceSettings, SettingsError, choose_book_engine
from audiobook_tts.engines import EngineError, check_engine, load_engine
from audiobook_tts.healthcheck import check
from audiobook_tts.lexicon import Lexicon, LexiconError
from audiobook_tts.listening.bookcheck import ChapterAudit, check_recordings
from audiobook_tts.listening.checking import render_checked_chapter
from audiobook_tts.listening.listener import FALLBACK_MAX_WER, Listener, load_listener
from audiobook_tts.listening.recognizer import ListenerModelError
from audiobook_tts.listening.recordings import RecordingRefused, read_recordings


def _settings() -> ServiceSettings | None:
    try:
        return ServiceSettings.from_environ()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


class _NoListener(Exception):
    """The listener was asked for and cannot load (already said on stderr)."""


def _listener(settings: ServiceSettings, wanted: bool = True) -> Listener | None:
    """The listener the settings give (None when off, not installed, or not `wanted`)."""
    if not wanted:
        return None
    try:
        listener = load_listener(settings)
    except ListenerModelError as error:
        print(f"error: the listener cannot start: {error}", file=sys.stderr)
        raise _NoListener from None
    if listener is not None:
        print(
            f"listener: Whisper at {listener.model} ({listener.recognizer.facts.device})",
            file=sys.stderr,
        )
    return listener


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
    try:
        listener = _listener(settings)
    except _NoListener:
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    try:
        app = create_app(settings, listener=listener)
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
    try:
        listener = _listener(settings)
    except _NoListener:
        return 2
    return run_worker(settings, listener)


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
        listener = _listener(settings, args.check)
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

        rendered = render_checked_chapter(engine, text, args.voice, args.speed, listener, progress)
    except _NoListener:
        return 2
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
    if rendered.check is not None:
        _say_check(rendered.check.as_dict())
    passed = rendered.check is None or rendered.check.passed
    return 0 if rendered.levels.meets_acx() and passed else 3


def _say_check(check: dict[str, object], indent: str = "") -> None:
    """The listener's verdict on a chapter: its error rate, DNSMOS, what it flagged."""
    dnsmos = check.get("dnsmos") or {}
    mos = dnsmos.get("p808_mos") if isinstance(dnsmos, dict) else None
    flagged = check.get("flagged") or []
    remade = check.get("remade") or []
    print(
        f"{indent}heard: WER {check['wer']:.3f} (bar {check['max_wer']} a sentence), DNSMOS {mos}, "
        f"{len(remade) if isinstance(remade, list) else 0} sentence(s) made again, "
        f"{len(flagged) if isinstance(flagged, list) else 0} flagged",
        file=sys.stderr,
    )
    for item in flagged if isinstance(flagged, list) else ():
        print(
            f"{indent}  FLAGGED sentence {item['sentence']} ({item['verdict']}, WER {item['wer']}): "
            f"{str(item['text'])[:70]!r} heard as {str(item['heard'])[:70]!r}",
            file=sys.stderr,
        )


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
        listener = _listener(settings, args.check)
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
                BookRequest(args.voice, args.speed, check=args.check),
                store,
                output,
                on_progress=bars.update,
                listener=listener,
            )
    except _NoListener:
        return 2
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
        if chapter.get("check"):
            _say_check(chapter["check"], "    ")
    print(f"{output / M4B_NAME}, {output / BOOK_JSON}", file=sys.stderr)
    check = description.get("check")
    passed = not isinstance(check, dict) or bool(check.get("passed"))
    return 0 if description["meets_acx"] and passed else 3


def _check(args: argparse.Namespace) -> int:
    """Hear audio against the book it should say: exit 0, 3 when a chapter fails, 2 for bad
    input (unreadable book or audio, silence, too long, chapters and files that differ)."""
    settings = _settings()
    if settings is None:
        return 2
    source = Path(args.book)
    try:
        if not source.is_file():
            raise BookRefused(f"{source}: no such file", "missing")
        book = read_book(source)
        lexicon = Lexicon()
        if args.lexicon:
            lexicon = Lexicon.parse(Path(args.lexicon).read_text(encoding="utf-8"))
        planned = plan_chapters(book, args.chapters or "", args.footnotes, lexicon)
        paths = [Path(name) for name in args.audio]
        for path in paths:
            if not path.is_file():
                raise RecordingRefused(f"{path}: no such file", "missing")
        recordings = read_recordings(paths, settings.max_check_seconds)
        listener = _listener(settings)
    except (BookRefused, RecordingRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, LexiconError) as error:
        print(f"error: {args.lexicon}: {error}", file=sys.stderr)
        return 2
    except _NoListener:
        return 2
    if listener is None:
        print(
            "error: no listener: install requirements/listener.txt (the image: inv build "
            "--engines espeak,piper,listener) or set AUDIOBOOK_TTS_LISTENER_MODEL",
            file=sys.stderr,
        )
        return 2

    def heard(audit: ChapterAudit) -> None:
        mark = "ok" if audit.passed else "FAILS"
        print(
            f"  chapter {audit.number} {audit.title!r} <- {audit.source}: WER {audit.wer:.3f}, "
            f"DNSMOS {audit.dnsmos.p808:.2f}, {len(audit.flagged)} flagged  {mark}",
            file=sys.stderr,
        )

    try:
        result = check_recordings(planned, recordings, listener, args.max_wer, heard)
    except RecordingRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for audit in result.chapters:
        if audit.sounds_like is not None:
            print(
                f"  chapter {audit.number}: {audit.source} says chapter {audit.sounds_like} "
                f"(files out of order?)",
                file=sys.stderr,
            )
        for score in audit.flagged:
            print(
                f"  chapter {audit.number} sentence {score.index + 1} {score.verdict} "
                f"(WER {score.wer:.2f}): {score.text[:70]!r} heard as {score.heard[:70]!r}",
                file=sys.stderr,
            )
    if not result.says_the_book:
        print("the audio does not say this book", file=sys.stderr)
    report = json.dumps(result.as_dict(), indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(report + "\n", encoding="utf-8")
    else:
        print(report)
    return 0 if result.passed else 3


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
    chapter.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not listen to the chapter (default: listen where a listener is installed)",
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
    book.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not listen to the chapters as they are made (default: listen where a "
        "listener is installed, retake or flag sentences that do not say their text)",
    )
    book.set_defaults(handler=_book)
    check = commands.add_parser(
        "check",
        help="hear audio against its book: per chapter the word error rate, missing, "
        "repeated and misread sentences, DNSMOS; exit 3 when a chapter fails",
    )
    check.add_argument("book", help="the book the audio should say (.epub, .txt, .md)")
    check.add_argument(
        "audio",
        nargs="+",
        help="the audio, a file per chapter in order (any format FFmpeg reads), or an M4B "
        "with a chapter marker each",
    )
    check.add_argument(
        "--chapters", help='the book\'s chapters the audio holds, e.g. "3-5" (default: every one)'
    )
    check.add_argument(
        "--footnotes",
        nargs="?",
        const="all",
        default="",
        metavar="CHAPTERS",
        help='the audio reads the footnotes at the end of their chapter (all, or "3-5")',
    )
    check.add_argument("--lexicon", help="lexicon.tsv the audio was made with")
    check.add_argument(
        "--max-wer",
        type=float,
        default=FALLBACK_MAX_WER,
        help=f"a sentence over this word error rate fails (default: {FALLBACK_MAX_WER})",
    )
    check.add_argument("--json", help="write the report here instead of standard output")
    check.set_defaults(handler=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result
