"""A second, independent engine on the same machine: a "fresh runner" that can be wiped.

Benchmarks and the cache tests throw builder caches away; doing that in the engine a
person builds with would make their next build cold. A sandbox engine has its own data
root, exec root, socket and pid file. It shares the main engine's docker0 bridge (and so
its NAT rules), handing out addresses from a range of its own and writing no iptables
rules: RUN steps keep the default network, so cache keys are the same as on the main
engine. ("bridge": "none" would be simpler, but dockerd then deletes docker0 for everyone.)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from imagebuild.engine.docker import DockerEngine
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings
from imagebuild.platform.processes import (
    pid_alive,
    read_pid,
    release_mounts,
    start_background,
    stop_pid,
    wait_until,
)


@dataclass(frozen=True)
class SandboxEngine:
    name: str
    root: Path
    # False: the classic image store (overlay2), as CodeBuild's and most CI runners' engines.
    containerd_store: bool = True
    # Addresses for its containers and RUN steps, on the shared docker0; one range per sandbox.
    cidr: str = "172.17.200.0/24"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        # Unix socket paths are short (108 bytes): keep the run files under /run.
        return Path("/run/audiobook-tts") / self.name

    @property
    def socket(self) -> Path:
        return self.exec_root / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def config_file(self) -> Path:
        return self.root / "daemon.json"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def settings(self, settings: Settings) -> Settings:
        """The same project settings, aimed at this engine."""
        return replace(settings, docker_host=self.host)


def sandbox(
    settings: Settings, name: str, containerd_store: bool = True, cidr: str = "172.17.200.0/24"
) -> SandboxEngine:
    return SandboxEngine(name, settings.state_dir / "engines" / name, containerd_store, cidr)


def daemon_config(box: SandboxEngine) -> dict[str, object]:
    return {
        "features": {"containerd-snapshotter": box.containerd_store},
        "bridge": "docker0",
        "fixed-cidr": box.cidr,
        "iptables": False,
        "ip6tables": False,
        "ip-forward": False,
        "ip-masq": False,
    }


def start(box: SandboxEngine, printer: Printer, fresh: bool = False) -> None:
    """Start the sandbox engine (wiping its data first when `fresh`); idempotent."""
    engine = DockerEngine(host=box.host)
    if fresh:
        stop(box, printer)
        release_mounts((box.root, box.exec_root), printer)
        if box.data_root.exists():
            shutil.rmtree(box.data_root)
    elif engine.answers():
        return
    if shutil.which("dockerd") is None or not Path("/sys/class/net/docker0").exists():
        raise ImageBuildError("the main engine is not up (no dockerd or docker0): run `inv up`")
    box.root.mkdir(parents=True, exist_ok=True)
    box.exec_root.mkdir(parents=True, exist_ok=True)
    box.config_file.write_text(json.dumps(daemon_config(box), indent=2) + "\n")
    pid = read_pid(box.pidfile)
    process = None
    if pid is None or not pid_alive(pid):
        process = start_background(
            [
                "dockerd",
                "--config-file",
                str(box.config_file),
                "--data-root",
                str(box.data_root),
                "--exec-root",
                str(box.exec_root),
                "--pidfile",
                str(box.exec_root / "dockerd.pid"),
                "--host",
                box.host,
            ],
            box.log,
            box.pidfile,
        )
    wait_until(engine.answers, process, 60, f"sandbox engine {box.name}", box.log)
    printer(f"sandbox engine {box.name}: up at {box.host} (data: {box.data_root})")


def stop(box: SandboxEngine, printer: Printer, wipe: bool = False) -> None:
    """Stop the sandbox engine; `wipe` also deletes its images and caches (gigabytes)."""
    stop_pid(box.pidfile, f"sandbox engine {box.name}", printer)
    if wipe:
        release_mounts((box.root, box.exec_root), printer)
        if box.data_root.exists():
            shutil.rmtree(box.data_root)
            printer(f"sandbox engine {box.name}: data wiped ({box.data_root})")
