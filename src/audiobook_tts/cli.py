"""The service's command line: serve, healthcheck."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from audiobook_tts.config import ServiceSettings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from audiobook_tts.app import create_app

    settings = ServiceSettings.from_environ()
    host = args.host or settings.host
    port = args.port or settings.port
    # uvicorn handles SIGTERM itself: in-flight requests finish, then the process exits.
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="info", timeout_graceful_shutdown=8
    )
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    settings = ServiceSettings.from_environ()
    url = f"http://127.0.0.1:{args.port or settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    if body.get("status") != "ok":
        print(f"unhealthy: {body}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiobook-tts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="address to listen on (default: AUDIOBOOK_TTS_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: AUDIOBOOK_TTS_PORT)")
    serve.set_defaults(handler=_serve)
    health = commands.add_parser("healthcheck", help="exit 0 when the local API answers /healthz")
    health.add_argument("--port", type=int, help="port of the API (default: AUDIOBOOK_TTS_PORT)")
    health.add_argument("--timeout", type=float, default=4.0, help="seconds to wait")
    health.set_defaults(handler=_healthcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result
