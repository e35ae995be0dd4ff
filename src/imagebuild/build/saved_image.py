"""Reading an image saved with `docker save`: its config history and the files of its layers.

Used to prove what an image does *not* contain (a CA bundle, a pip cache, a build secret),
which no amount of reading the Dockerfile can prove.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class LayerFile:
    layer: int
    path: str
    size: int
    sha256: str | None


class SavedImage:
    """A `docker save` archive (OCI layout or the classic manifest.json form)."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self._tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by close()/__exit__
        self._names = set(self._tar.getnames())

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> SavedImage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, name: str) -> Any:
        handle = self._tar.extractfile(name)
        if handle is None:
            raise ValueError(f"{name} is not a file in {self.archive}")
        return json.load(handle)

    def _blob(self, digest: str) -> str:
        algorithm, _, value = digest.partition(":")
        return f"blobs/{algorithm}/{value}"

    def _manifest(self) -> tuple[str, list[str]]:
        """(config member, layer members) of the first image in the archive."""
        if "manifest.json" in self._names:
            entry = self._json("manifest.json")[0]
            return entry["Config"], list(entry["Layers"])
        index = self._json("index.json")
        descriptor = index["manifests"][0]
        manifest = self._json(self._blob(descriptor["digest"]))
        while "manifests" in manifest:
            manifest = self._json(self._blob(manifest["manifests"][0]["digest"]))
        return (
            self._blob(manifest["config"]["digest"]),
            [self._blob(layer["digest"]) for layer in manifest["layers"]],
        )

    def config(self) -> dict[str, Any]:
        config_name, _ = self._manifest()
        data: dict[str, Any] = self._json(config_name)
        return data

    def history(self) -> list[str]:
        """Every `created_by` line, untruncated: what `docker history --no-trunc` shows."""
        return [str(entry.get("created_by", "")) for entry in self.config().get("history", [])]

    def _layer_files(
        self, layers: set[int] | None = None
    ) -> Iterator[tuple[int, tarfile.TarInfo, tarfile.TarFile]]:
        """(layer number, member, the open layer) for every regular file, layer by layer."""
        _, members = self._manifest()
        for number, member_name in enumerate(members):
            if layers is not None and number not in layers:
                continue
            handle = self._tar.extractfile(member_name)
            if handle is None:
                continue
            with tarfile.open(fileobj=handle, mode="r|*") as layer:
                for member in layer:
                    if member.isfile():
                        yield number, member, layer

    def files(self, hash_sizes: set[int] | None = None) -> Iterator[LayerFile]:
        """Every regular file of every layer; hashed when its size is in `hash_sizes`."""
        for number, member, layer in self._layer_files():
            digest = None
            if hash_sizes is not None and member.size in hash_sizes:
                content = layer.extractfile(member)
                digest = _sha256(content) if content is not None else None
            yield LayerFile(number, member.name.lstrip("./"), member.size, digest)

    def read_files(
        self, wanted: set[str], layers: set[int] | None = None
    ) -> dict[tuple[int, str], bytes]:
        """The content of files whose base name is in `wanted` (optionally of some layers only)."""
        found: dict[tuple[int, str], bytes] = {}
        for number, member, layer in self._layer_files(layers):
            if member.name.rsplit("/", 1)[-1] in wanted:
                content = layer.extractfile(member)
                if content is not None:
                    found[(number, member.name.lstrip("./"))] = content.read()
        return found

    def find_bytes(self, needles: list[bytes]) -> Iterator[tuple[LayerFile, bytes]]:
        """Files (of any layer) whose content contains one of `needles`."""
        for number, member, layer in self._layer_files():
            content = layer.extractfile(member) if member.size else None
            if content is None:
                continue
            data = content.read()
            for needle in needles:
                if needle in data:
                    yield LayerFile(number, member.name.lstrip("./"), member.size, None), needle


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def certificate_blocks(text: str) -> list[str]:
    """The PEM certificate blocks of a CA bundle, normalised."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line == "-----BEGIN CERTIFICATE-----":
            current = [line]
        elif current:
            current.append(line)
            if line == "-----END CERTIFICATE-----":
                blocks.append("\n".join(current))
                current = []
    return blocks


def find_leaks(archive: Path, ca_bundle: Path | None) -> list[str]:
    """What a saved image holds that it must not: pip caches, secrets, the host's CA bundle.

    Public roots (Debian's bundle in the base layer, made before any secret existed, and
    certifi's copies) are allowed; any certificate the host trusts beyond those is not.
    """
    findings: list[str] = []
    with SavedImage(archive) as saved:
        for line in saved.history():
            if "BEGIN CERTIFICATE" in line:
                findings.append(f"a certificate in the image history: {line[:80]}")
        sizes = {ca_bundle.stat().st_size} if ca_bundle is not None else None
        files = list(saved.files(hash_sizes=sizes))
        for item in files:
            if item.path.startswith("run/secrets/"):
                findings.append(f"a build secret in layer {item.layer}: /{item.path}")
            if "/.cache/pip/" in f"/{item.path}":
                findings.append(f"a pip cache file in layer {item.layer}: /{item.path}")
                break
        if ca_bundle is None:
            return findings
        bundle_hash = hashlib.sha256(ca_bundle.read_bytes()).hexdigest()
        findings += [
            f"the host CA bundle, copied to /{item.path} (layer {item.layer})"
            for item in files
            if item.sha256 == bundle_hash
        ]
        public_files = saved.read_files({"ca-certificates.crt"}, layers={0})
        public_files.update(saved.read_files({"cacert.pem"}))
        public: set[str] = set()
        for content in public_files.values():
            public.update(certificate_blocks(content.decode("utf-8", "replace")))
        host_only = set(certificate_blocks(ca_bundle.read_text(encoding="utf-8"))) - public
        # The middle line of a PEM block is 64 characters of that certificate alone.
        needles = [block.splitlines()[len(block.splitlines()) // 2].encode() for block in host_only]
        if needles:
            seen: set[str] = set()
            for item, _ in saved.find_bytes(needles):
                if item.path not in seen:
                    seen.add(item.path)
                    findings.append(
                        f"a certificate only the host trusts, in /{item.path} (layer {item.layer})"
                    )
    return findings
