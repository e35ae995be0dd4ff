"""The authenticated local registry's secrets: a CA of the project's own and a server
certificate (openssl), an htpasswd file (Debian's apache2-utils), and a generated password.

The CA is trusted by the Docker engine alone (/etc/docker/certs.d/<registry>/ca.crt), never
added to the system's bundle. Passwords go to programs on standard input, never as arguments.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import RegistryPaths, StatePaths
from imagebuild.platform.debian import install_packages, require_root_debian

REGISTRY_USER = "audiobook-tts"
CERTS_D = Path("/etc/docker/certs.d")


def _openssl(arguments: list[str], log: Path) -> None:
    result = subprocess.run(["openssl", *arguments], capture_output=True, text=True, check=False)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ openssl {' '.join(arguments)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise ImageBuildError(f"openssl failed: {lines[-1] if lines else result.returncode}", log)


def server_extensions(host: str) -> str:
    """X.509 v3 extensions of the registry's certificate: an IP or DNS name, server auth only."""
    kind = "IP" if host.replace(".", "").isdigit() or ":" in host else "DNS"
    names = f"{kind}:{host}" + ("" if host == "localhost" else ",DNS:localhost")
    return (
        f"subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )


def ensure_tls(paths: RegistryPaths, address: str, printer: Printer) -> None:
    """The CA and a server certificate for `address`, made once and kept with the registry."""
    if paths.ca_cert.exists() and paths.server_cert.exists() and paths.server_key.exists():
        return
    tls = paths.ca_cert.parent
    tls.mkdir(parents=True, exist_ok=True)
    tls.chmod(0o700)
    log = tls / "openssl.log"
    host = address.rpartition(":")[0].strip("[]")
    _openssl(
        [
            "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-sha256", "-days", "3650",
            "-keyout", str(paths.ca_key), "-out", str(paths.ca_cert),
            "-subj", "/CN=audiobook-tts local registry CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        log,
    )  # fmt: skip
    request = tls / "server.csr"
    extensions = tls / "server.ext"
    extensions.write_text(server_extensions(host), encoding="utf-8")
    _openssl(
        [
            "req", "-newkey", "rsa:3072", "-nodes", "-sha256",
            "-keyout", str(paths.server_key), "-out", str(request), "-subj", f"/CN={host}",
        ],
        log,
    )  # fmt: skip
    _openssl(
        [
            "x509", "-req", "-in", str(request), "-sha256", "-days", "825",
            "-CA", str(paths.ca_cert), "-CAkey", str(paths.ca_key), "-CAcreateserial",
            "-extfile", str(extensions), "-out", str(paths.server_cert),
        ],
        log,
    )  # fmt: skip
    printer(f"  made a CA and a certificate for {host} ({tls}); only the engine trusts the CA")


def trust_for_engine(paths: RegistryPaths, address: str) -> Path:
    """The engine (and only the engine) trusts the registry's CA; no restart is needed."""
    target = CERTS_D / address / "ca.crt"
    if not target.exists() or target.read_bytes() != paths.ca_cert.read_bytes():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths.ca_cert, target)
    return target


def ensure_htpasswd(paths: RegistryPaths, state: StatePaths, printer: Printer) -> None:
    """REGISTRY_USER with a generated password (bcrypt in htpasswd, plain in a 0600 file)."""
    if paths.htpasswd.exists() and paths.password.exists():
        return
    if shutil.which("htpasswd") is None:
        require_root_debian("htpasswd (Debian's apache2-utils) is not installed")
        install_packages(["apache2-utils"], state, printer)
    password = secrets.token_urlsafe(24)
    paths.root.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["htpasswd", "-B", "-i", "-c", str(paths.htpasswd), REGISTRY_USER],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ImageBuildError(f"htpasswd failed: {result.stderr.strip()}")
    descriptor = os.open(paths.password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    printer(f"  user {REGISTRY_USER}, password in {paths.password} (0600)")


def read_password(paths: RegistryPaths) -> str:
    return paths.password.read_text(encoding="utf-8").strip()
