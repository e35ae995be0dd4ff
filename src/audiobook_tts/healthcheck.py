"""The container's HEALTHCHECK: exit 0 when the local API answers /healthz with status ok.

A module of its own, importing nothing heavy: the engine runs it every 30 seconds.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from audiobook_tts.config import ServiceSettings


def check(port: int | None = None, timeout: float = 4.0) -> int:
    settings = ServiceSettings.from_environ()
    url = f"http://127.0.0.1:{port or settings.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    if body.get("status") != "ok":
        print(f"unhealthy: {body}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(check())
