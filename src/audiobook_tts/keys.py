"""API keys: with AUDIOBOOK_TTS_API_KEYS set, every route but /healthz and /readyz needs
`Authorization: Bearer <key>` (what the OpenAI SDK sends), and a job is its key's alone.

The setting is a file of keys (a key a line; `sha256:<hex>` lines give a key by its hash;
`#` starts a comment), or keys by hash in the variable itself (`sha256:<hex>,sha256:<hex>`),
never a key in clear in the environment. A key is known by its SHA-256 (its id, kept as the
owner of its jobs); a presented key is hashed and compared with every known hash in constant
time. Keys are never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from audiobook_tts.config import SettingsError
from audiobook_tts.responses import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
HASH_PREFIX = "sha256:"
STATE_KEY = "api_key_id"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """The known keys, by their SHA-256 (hex)."""

    hashes: tuple[str, ...]

    @classmethod
    def from_setting(cls, value: str) -> KeyRing | None:
        """None for an empty setting (an open service); SettingsError for a bad one."""
        value = value.strip()
        if not value:
            return None
        if value.startswith(HASH_PREFIX):
            entries = [entry.strip() for entry in value.split(",") if entry.strip()]
            where = "AUDIOBOOK_TTS_API_KEYS"
        else:
            path = Path(value)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise SettingsError(
                    f"AUDIOBOOK_TTS_API_KEYS: cannot read the key file {path}: "
                    f"{getattr(error, 'strerror', None) or error}"
                ) from None
            entries = [line.split("#", 1)[0].strip() for line in lines]
            entries = [entry for entry in entries if entry]
            where = str(path)
        hashes = []
        for number, entry in enumerate(entries, 1):
            if entry.startswith(HASH_PREFIX):
                digest = entry[len(HASH_PREFIX) :].lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise SettingsError(f"{where}: entry {number} is not sha256: and 64 hex digits")
                hashes.append(digest)
            elif where == "AUDIOBOOK_TTS_API_KEYS":
                raise SettingsError(
                    "AUDIOBOOK_TTS_API_KEYS: give a file of keys, or keys by hash (sha256:<hex>)"
                )
            else:
                hashes.append(key_hash(entry))
        if not hashes:
            raise SettingsError(f"{where}: no keys in it (unset the variable for an open service)")
        return cls(tuple(hashes))

    def match(self, key: str) -> str | None:
        """The key's id when it is known; every known hash is compared, in constant time."""
        presented = key_hash(key).encode()
        found = None
        for known in self.hashes:
            if hmac.compare_digest(presented, known.encode()):
                found = known
        return found


def key_id(scope: Scope) -> str:
    """The id of the key the request came with ("" on an open service)."""
    state = scope.get("state") or {}
    return str(state.get(STATE_KEY, ""))


class ApiKeys:
    """401 in OpenAI's error shape for a request without a known key; the key's id is kept
    in the request's state for the routes (`key_id`)."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, key = header.partition(" ")
        found = self.keys.match(key.strip()) if scheme.lower() == "bearer" and key else None
        if found is None:
            message = (
                "Incorrect API key provided."
                if header
                else "You didn't provide an API key: send it as `Authorization: Bearer <key>`."
            )
            response = error_response(401, message, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = found
        await self.app(scope, receive, send)
