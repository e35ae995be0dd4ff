"""The one module that talks to Docker, through python-on-whales.

Every other module holds a `DockerEngine` and gets plain values from it; the python-on-whales
client never leaves this module, and neither does a `DockerException`: it becomes an
`ImageBuildError` with one line to read and the log to open. What a build's run means (its
report, a rerun) is decided outside, in `run.py`, from what these methods return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient, DockerException
from python_on_whales.utils import run

from imagebuild.errors import ImageBuildError
from imagebuild.plan.config import Settings
from imagebuild.plan.plan import BuildPlan


def _first_line(error: DockerException) -> str:
    text = (error.stderr or error.stdout or "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith(("error", "cannot", "failed")):
            return line
    return lines[-1] if lines else f"docker exited with code {error.return_code}"


@contextlib.contextmanager
def docker_errors(action: str, log_path: Path | None = None) -> Iterator[None]:
    """Turn any DockerException inside the block into one clear line."""
    try:
        yield
    except DockerException as error:
        raise ImageBuildError(f"{action}: {_first_line(error)}", log_path) from error


def _answers(docker: DockerClient) -> bool:
    try:
        version = docker.version()
    except (DockerException, OSError):
        # OSError: no docker client binary at all.
        return False
    return version.server is not None


@dataclass(frozen=True)
class StoredImage:
    """An image in the engine's store."""

    image_id: str
    size: int


@dataclass(frozen=True)
class EngineFacts:
    server_version: str
    buildx_version: str
    containerd_store: bool
    data_root: str


def _facts(docker: DockerClient) -> EngineFacts:
    with docker_errors("cannot read the engine's facts"):
        info = docker.system.info()
        buildx = docker.buildx.version()
    status = {str(key): str(value) for key, value in (info.driver_status or [])}
    containerd = "containerd" in status.get("driver-type", "") or "containerd" in str(info.driver)
    buildx_version = buildx.get("version", "") if isinstance(buildx, dict) else str(buildx)
    return EngineFacts(
        server_version=str(info.server_version),
        buildx_version=str(buildx_version),
        containerd_store=containerd,
        data_root=str(info.docker_root_dir),
    )


# --- images, containers and the builder cache -------------------------------------------


def _remove_images(docker: DockerClient, references: Sequence[str]) -> None:
    present = [ref for ref in references if docker.image.exists(ref)]
    if present:
        with docker_errors("cannot remove images"):
            docker.image.remove(present, force=True)


def _prune_builder(docker: DockerClient) -> None:
    """Throw away the builder's whole local cache (`docker buildx prune -af`)."""
    with docker_errors("cannot prune the builder cache"):
        docker.buildx.prune(all=True)


def _image_size(docker: DockerClient, reference: str) -> int:
    """The image's size as the engine reports it (compressed content, containerd store)."""
    with docker_errors(f"cannot inspect {reference}"):
        return int(docker.image.inspect(reference).size or 0)


def _unpacked_size(docker: DockerClient, reference: str) -> int:
    """Bytes in the image's file system, as a container sees it (`du` on its root)."""
    with docker_errors(f"cannot measure {reference} unpacked"):
        output = docker.run(
            reference, ["-sxb", "/"], entrypoint="du", user="0:0", remove=True, networks=["none"]
        )
    return int(str(output).split()[0])


def _login(docker: DockerClient, server: str, username: str, password: str) -> None:
    # python-on-whales' own login lets docker's output through to the terminal; this is the
    # same call (password on standard input) with the output captured for a one-line error.
    command = [*docker.docker_cmd, "login", "--password-stdin", "--username", username, server]
    with docker_errors(f"cannot log in to {server}"):
        run(command, input=password.encode(), capture_stdout=True, capture_stderr=True)


def _container_builder(
    docker: DockerClient, name: str, image: str, config: Path | None, endpoint: str
) -> str | None:
    """A running docker-container builder `name` on `image`: None when it runs, else why not."""
    with contextlib.suppress(DockerException):
        # --bootstrap fails unless the builder's container runs (or can be started).
        if docker.buildx.inspect(name, bootstrap=True).driver == "docker-container":
            return None
        docker.buildx.remove(name)
    try:
        docker.buildx.create(
            endpoint or None,
            name=name,
            driver="docker-container",
            # Host network: the builder reaches a registry on 127.0.0.1 as the engine does.
            driver_options={"image": image, "network": "host"},
            config=config,
            bootstrap=True,
        )
    except DockerException as error:
        with contextlib.suppress(DockerException):
            docker.buildx.remove(name)
        return _first_line(error).removeprefix("ERROR: ")
    return None


class DockerEngine:
    """One Docker engine (the default one, or a sandbox's socket) and what the tooling does
    with it; the python-on-whales client stays inside."""

    def __init__(self, binary: str = "docker", host: str = "") -> None:
        self.host = host
        self._docker = DockerClient(client_call=[binary], host=host or None)

    @classmethod
    def of(cls, settings: Settings) -> DockerEngine:
        """The engine the settings name."""
        return cls(settings.docker_client, settings.docker_host)

    def answers(self) -> bool:
        """True when a daemon answers (False too when there is no docker client at all)."""
        return _answers(self._docker)

    def facts(self) -> EngineFacts:
        return _facts(self._docker)

    def buildx(self, plan: BuildPlan, feed: Callable[[str], None]) -> str | None:
        """Make the plan's buildx call, each chunk of its rawjson progress handed to `feed`;
        None when it succeeded, else the first line of its error."""
        try:
            stream = self._docker.buildx.build(**plan.buildx_kwargs())
            # With stream_logs=True python-on-whales returns the log lines, never an Image.
            assert isinstance(stream, Iterator)
            for chunk in stream:
                feed(str(chunk))
        except DockerException as error:
            return _first_line(error)
        return None

    def load_archive(self, archive: Path, digest: str, tags: Sequence[str], log: Path) -> None:
        """An OCI archive (a reproducible build's) into the engine, tagged."""
        with docker_errors("cannot load the reproducible image", log):
            self._docker.image.load(archive, quiet=True)
            for tag in tags:
                self._docker.image.tag(digest, tag)

    def push(self, tag: str, log: Path) -> None:
        with docker_errors(f"cannot push {tag}", log):
            self._docker.image.push(tag, quiet=True)

    def stored_image(self, reference: str) -> StoredImage | None:
        """The image's id and size as the engine stores it; None when it has no such image."""
        with contextlib.suppress(DockerException):
            image = self._docker.image.inspect(reference)
            return StoredImage(str(image.id), int(image.size or 0))
        return None

    def image_size(self, reference: str) -> int:
        return _image_size(self._docker, reference)

    def unpacked_size(self, reference: str) -> int:
        return _unpacked_size(self._docker, reference)

    def remove_images(self, references: Sequence[str]) -> None:
        _remove_images(self._docker, references)

    def prune_builder(self) -> None:
        _prune_builder(self._docker)

    def login(self, server: str, username: str, password: str) -> None:
        _login(self._docker, server, username, password)

    def container_builder(self, name: str, image: str, config: Path | None) -> str | None:
        """Start (or reuse) a docker-container builder; None when it runs, else the reason."""
        return _container_builder(self._docker, name, image, config, self.host)
