"""Every command a person or CI types: `inv --list`, `inv --help TASK`.

Thin on purpose: each task turns its flags into a typed value and calls one function of
`src/imagebuild`. Defaults come from invoke.yaml (and INVOKE_IMAGEBUILD_* variables).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from imagebuild.bench import results as bench_results
from imagebuild.bench import runner as bench_runner
from imagebuild.build import flow, records
from imagebuild.build.cache_check import cache_check as check_cache
from imagebuild.ci import registry_login
from imagebuild.ci import run as ci_run
from imagebuild.ci.doctor import run_doctor
from imagebuild.docs.settings_table import write_settings_table
from imagebuild.invoke_glue import (
    clear_errors,
    say,
    settings_from,
    split_values,
    with_registry_auth,
)
from imagebuild.locks import compile as lock_files
from imagebuild.plan.request import BuildRequest, parse_platforms
from imagebuild.platform import debian
from imagebuild.platform import local as local_platform


@task(
    help={
        "registry_auth": "run the local registry with htpasswd and TLS, like ECR (same as "
        "INVOKE_IMAGEBUILD_REGISTRY_AUTH=true); the engine is logged in to it",
        "platform": "make the base image for these platforms, e.g. linux/amd64,linux/arm64 "
        "(foreign ones under QEMU, set up here); repeatable; default: those the base has",
    },
    iterable=["platform"],
)
@clear_errors
def up(c: Context, registry_auth: bool = False, platform: list[str] | None = None) -> None:
    """Bring up the local build platform: engine + buildx, registry on 127.0.0.1:5000, base image."""
    local_platform.up(
        with_registry_auth(settings_from(c.config), registry_auth),
        say,
        parse_platforms(split_values(platform)),
    )


@task
@clear_errors
def test_tools(c: Context) -> None:
    """Install what the tests run on the host (Debian's ffmpeg, for ffprobe), when missing."""
    debian.install_test_tools(settings_from(c.config), say)


@task
@clear_errors
def down(c: Context) -> None:
    """Stop the engine and registry that `inv up` started (by pid); images and caches are kept."""
    local_platform.down(settings_from(c.config), say)


@task(
    auto_shortflags=False,
    iterable=["tag", "cache_from", "cache_to", "build_arg", "platform"],
    help={
        "target": "Dockerfile stage to build (default: runtime; `inv stages` lists them)",
        "tag": "image reference to tag the result with; repeatable",
        "cache": "cache mode: none, inline, local or registry (default from invoke.yaml)",
        "cache_from": "extra cache source: an image reference or a buildx cache spec; repeatable",
        "cache_to": "cache export: an image reference or a buildx cache spec (replaces the mode's)",
        "no_cache": "build every step again, ignoring the builder's cache",
        "push": "push the tags to their registry",
        "load": "store the image in the engine (default unless --push)",
        "no_load": "do not store the image in the engine",
        "platform": "target platform(s), e.g. linux/amd64; repeatable",
        "build_arg": "extra build argument KEY=VALUE; repeatable",
        "progress": "auto, plain, tty or quiet (what the terminal shows; the log is always full)",
        "verbose": "show every step and its output (same as --progress plain)",
        "torch_variant": "cpu or cuda (default from invoke.yaml)",
        "engines": "what the image holds, comma-separated: espeak (always), piper (a neural "
        "voice; with espeak the default), csm (Sesame CSM through transformers; with "
        "--torch-variant cuda, the GPU image), listener (Whisper and DNSMOS: chapters heard "
        "as they are made, and `audiobook-tts check`)",
        "no_up": "fail instead of running `inv up` when the platform is not up",
        "reproducible": "same commit, same digest: SOURCE_DATE_EPOCH from the last commit and "
        "layer timestamps clamped to it (slower export)",
        "compression": "layer compression, gzip or zstd (default from invoke.yaml); zstd needs "
        "a registry and engines that take OCI zstd layers (ECR, the local registry, Docker 23+)",
    },
)
@clear_errors
def build(
    c: Context,
    target: str = "",
    tag: list[str] | None = None,
    cache: str = "",
    cache_from: list[str] | None = None,
    cache_to: list[str] | None = None,
    no_cache: bool = False,
    push: bool = False,
    load: bool = False,
    no_load: bool = False,
    platform: list[str] | None = None,
    build_arg: list[str] | None = None,
    progress: str = "auto",
    verbose: bool = False,
    torch_variant: str = "",
    engines: str = "",
    no_up: bool = False,
    reproducible: bool = False,
    compression: str = "",
) -> None:
    """Build the service image with buildx; prints what was cached and appends to build-logs/."""
    request = BuildRequest(
        target=target or None,
        tags=tuple(tag or ()),
        cache_mode=cache or None,
        cache_from=tuple(cache_from or ()),
        cache_to=tuple(cache_to or ()),
        no_cache=no_cache,
        push=push,
        load=True if load else (False if no_load else None),
        platforms=split_values(platform),
        build_args=tuple(build_arg or ()),
        progress=progress,
        verbose=verbose,
        torch_variant=torch_variant or None,
        engines=split_values([engines] if engines else None),
        reproducible=reproducible,
        compression=compression or None,
    )
    flow.build(settings_from(c.config), request, say, start_platform=not no_up)


@task(
    auto_shortflags=False,
    iterable=["upgrade_package", "group"],
    help={
        "upgrade_package": "bump this package to its newest allowed version; repeatable",
        "upgrade": "bump every package of the groups compiled",
        "group": "compile only this group (torch-cpu, torch-cuda, service, csm, dev); repeatable",
        "check": "compile into a scratch directory and fail with a diff if a lock is stale",
    },
)
@clear_errors
def lock(
    c: Context,
    upgrade_package: list[str] | None = None,
    upgrade: bool = False,
    group: list[str] | None = None,
    check: bool = False,
) -> None:
    """pip-compile every requirements group (hashes; torch pinned on its own), in order."""
    settings = settings_from(c.config)
    requirements = settings.root / "requirements"
    if check:
        lock_files.check_or_fail(requirements, settings.dockerfile, say)
        return
    lock_files.lock(
        requirements,
        settings.dockerfile,
        say,
        tuple(upgrade_package or ()),
        upgrade,
        split_values(group),
    )


@task
@clear_errors
def stages(c: Context) -> None:
    """List the stages of docker/tts/Dockerfile, read from the file itself."""
    records.print_stages(settings_from(c.config), say)


@task(
    help={
        "ecr": "use the AWS CLI's 12-hour ECR token (the default for an ECR registry)",
        "username": "registry user (default: REGISTRY_USERNAME; the local registry's own user)",
        "password_stdin": "read the password from standard input (else: REGISTRY_PASSWORD)",
        "registry_auth": "the configured local registry is the authenticated one (htpasswd + TLS)",
    }
)
@clear_errors
def login(
    c: Context,
    ecr: bool = False,
    username: str = "",
    password_stdin: bool = False,
    registry_auth: bool = False,
) -> None:
    """Log the engine in to the configured registry; a password never goes on the command line."""
    settings = with_registry_auth(settings_from(c.config), registry_auth)
    stdin = sys.stdin if password_stdin else None
    registry_login.login(settings, say, ecr, username, stdin, os.environ)


@task(help={"last": "how many builds to show (newest last)", "json": "print the JSON lines"})
@clear_errors
def history(c: Context, last: int = 5, json: bool = False) -> None:
    """Show the reports of the last builds, from build-logs/history.jsonl."""
    records.print_history(settings_from(c.config), last, json, say)


@task(
    help={
        "target": "Dockerfile stage to check (default: runtime)",
        "cache": "cache mode, as for `inv build`",
        "no_up": "fail instead of running `inv up` when the platform is not up",
    }
)
@clear_errors
def cache_check(c: Context, target: str = "", cache: str = "", no_up: bool = False) -> None:
    """Rebuild with no change and say which steps hit the cache and why the others did not."""
    request = BuildRequest(target=target or None, cache_mode=cache or None)
    check_cache(settings_from(c.config), request, say, start_platform=not no_up)


@task
@clear_errors
def settings_table(c: Context) -> None:
    """Write the README's table of every setting (INVOKE_IMAGEBUILD_*, AUDIOBOOK_TTS_*) from the code."""
    write_settings_table(settings_from(c.config).root, say)


@task(help={"json": "print {path: sha256} instead of a listing"})
@clear_errors
def context(c: Context, json: bool = False) -> None:
    """List the files and bytes the build context sends (after .dockerignore)."""
    records.print_context(settings_from(c.config), json, say)


@task(
    auto_shortflags=False,
    help={
        "scenarios": f"comma-separated subset of: {', '.join(bench_results.SCENARIOS)} (default: all)",
        "n": "runs per scenario and build (the table shows the median, min and max)",
        "publish": "copy the table and chart into docs/bench.md and docs/bench/",
        "keep_engine": "leave the sandbox engine running afterwards",
        "variant": "which image: cpu (CPU torch, espeak), cuda-csm (CUDA torch, espeak and "
        "CSM: the image users ship; gigabytes of wheels, an hour on 2 cores) or arm64 (the "
        "cpu image for linux/arm64, under QEMU: slow; needs `inv up --platform "
        "linux/amd64,linux/arm64`; try --scenarios cold,app-change)",
        "installer": "how ours installs its package layers: pip (default) or uv",
        "compression": "layer compression of both builds: gzip (default) or zstd",
    },
)
@clear_errors
def bench(
    c: Context,
    scenarios: str = "",
    n: int = 1,
    publish: bool = False,
    keep_engine: bool = False,
    variant: str = "cpu",
    installer: str = "pip",
    compression: str = "gzip",
) -> None:
    """Measure build scenarios for this build and the naive baseline; write table, JSON, chart."""
    settings = settings_from(c.config)
    image_variant = bench_results.image_variant(variant)
    out_dir = bench_runner.bench_dir(settings)
    bench_runner.run_bench(
        settings,
        bench_results.parse_scenarios(scenarios),
        n,
        out_dir,
        say,
        keep_engine,
        image=image_variant,
        installer=installer,
        compression=compression,
    )
    if publish:
        bench_results.publish(out_dir, settings.root, say)


@task(
    help={
        "no_smoke": "build and push only; skip the smoke test (nox -s smoke)",
        "cache": "registry (the cache in <registry>/<image>:buildcache, for runners that start "
        "cold) or inline (the engine keeps its own cache: CodeBuild's Docker Server); "
        "default: ci.cache in invoke.yaml, INVOKE_CI_CACHE",
    }
)
@clear_errors
def ci(c: Context, no_smoke: bool = False, cache: str = "") -> None:
    """What every CI runs: build with the CI's cache, push, smoke test, write a summary."""
    options = ci_run.CiOptions.from_config(
        dict(c.config.get("ci", None) or {}), cache, not no_smoke
    )
    ci_run.run_ci(settings_from(c.config), say, options=options)


@task(
    help={
        "registry_auth": "check the authenticated local registry (htpasswd + TLS)",
        "codebuild": "also check this CodeBuild project with boto3: its cache, the image in "
        "ECR, CACHED steps in its newest build's log",
    }
)
@clear_errors
def doctor(c: Context, registry_auth: bool = False, codebuild: str = "") -> None:
    """What the engine at hand supports (store, drivers, cache exporters, registry, login), with fixes."""
    settings = with_registry_auth(settings_from(c.config), registry_auth)
    run_doctor(settings, say, codebuild)
