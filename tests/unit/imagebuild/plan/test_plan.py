"""Flags -> buildx arguments, without a daemon."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagebuild.errors import UsageError
from imagebuild.plan.config import HostPackageSettings, Settings
from imagebuild.plan.dockerfile import parse_stages
from imagebuild.plan.plan import BuildPlan, CacheExporter, exports_cache, make_plan
from imagebuild.plan.request import (
    BuildRequest,
    check_request,
    names_registry,
    parse_build_args,
    parse_cache_spec,
    parse_platforms,
)

ROOT = Path(__file__).resolve().parents[4]
NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
STAGES = parse_stages((ROOT / "docker/tts/Dockerfile").read_text())


def settings(**overrides: object) -> Settings:
    values = {"state_dir": "/var/lib/test-state"}
    values.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_mapping(values, ROOT)


def plan(
    request: BuildRequest | None = None,
    host: HostPackageSettings | None = None,
    source_date_epoch: int | None = None,
    exporter: CacheExporter | None = None,
    **kw: object,
) -> BuildPlan:
    return make_plan(
        settings(**kw),
        host or HostPackageSettings(),
        request or BuildRequest(),
        STAGES,
        NOW,
        source_date_epoch=source_date_epoch,
        exporter=exporter or CacheExporter(),
    )


def test_default_plan_builds_runtime_and_loads_without_inline_cache_it_would_not_push() -> None:
    result = plan()
    kwargs = result.buildx_kwargs()
    assert kwargs["target"] == "runtime"
    assert kwargs["load"] is True
    assert "push" not in kwargs
    # Inline cache is read from a pushed image only; preparing it costs seconds on 49 layers.
    assert "cache_to" not in kwargs
    assert any("nothing is pushed" in note for note in result.notes)
    assert plan(BuildRequest(push=True)).buildx_kwargs()["cache_to"] == {"type": "inline"}
    assert kwargs["progress"] == "rawjson"
    assert kwargs["stream_logs"] is True
    assert kwargs["provenance"] is False
    assert kwargs["tags"] == ["audiobook-tts:latest", "127.0.0.1:5000/audiobook-tts:latest"]
    assert kwargs["build_args"]["TORCH_VARIANT"] == "cpu"
    assert kwargs["build_args"]["BASE_IMAGE"] == "127.0.0.1:5000/audiobook-tts/base:bookworm"
    installer = "127.0.0.1:5000/audiobook-tts/base:installer-py3.11"
    assert kwargs["build_args"]["INSTALLER_IMAGE"] == installer
    assert result.log_path == ROOT / "build-logs" / "20261121T080000.000Z-runtime.log"


def test_registry_mode_uses_buildcache_tag_with_ecr_options_and_ignore_error() -> None:
    result = plan(BuildRequest(cache_mode="registry"))
    kwargs = result.buildx_kwargs()
    assert kwargs["cache_from"] == [
        {"type": "registry", "ref": "127.0.0.1:5000/audiobook-tts:buildcache"}
    ]
    assert kwargs["cache_to"] == {
        "type": "registry",
        "ref": "127.0.0.1:5000/audiobook-tts:buildcache",
        "mode": "max",
        "image-manifest": "true",
        "oci-mediatypes": "true",
        "ignore-error": "true",
    }


def test_local_mode_exports_to_a_fresh_directory_and_swaps_it_in() -> None:
    result = plan(BuildRequest(cache_mode="local"))
    kwargs = result.buildx_kwargs()
    current = "/var/lib/test-state/cache/audiobook-tts/current"
    assert kwargs["cache_from"] == [{"type": "local", "src": current}]
    assert (
        kwargs["cache_to"]["dest"]
        == "/var/lib/test-state/cache/audiobook-tts/next-20261121T080000.000Z"
    )
    assert kwargs["cache_to"]["mode"] == "max"
    assert result.local_cache == (Path(kwargs["cache_to"]["dest"]), Path(current))


def test_none_mode_and_no_cache_flag_disable_the_cache() -> None:
    none = plan(BuildRequest(cache_mode="none")).buildx_kwargs()
    assert none["cache"] is False
    assert "cache_to" not in none and "cache_from" not in none
    assert plan(BuildRequest(no_cache=True)).buildx_kwargs()["cache"] is False


def test_plain_image_reference_becomes_a_registry_cache_source_and_is_repeatable() -> None:
    result = plan(BuildRequest(cache_from=("sesame-tts-jetson:latest", "type=local,src=/tmp/c")))
    assert result.buildx_kwargs()["cache_from"] == [
        {"type": "registry", "ref": "sesame-tts-jetson:latest"},
        {"type": "local", "src": "/tmp/c"},
    ]


def test_cache_to_replaces_the_modes_export() -> None:
    result = plan(
        BuildRequest(cache_mode="local", cache_to=("type=registry,ref=r.example:5000/x:c",))
    )
    assert result.buildx_kwargs()["cache_to"] == {
        "type": "registry",
        "ref": "r.example:5000/x:c",
        "ignore-error": "true",
    }
    assert result.local_cache is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nowhere,ref=x", "is not one of"),
        ("type=registry", "needs ref="),
        ("mode=max,", "is not key=value"),
        ("Not An Image!", "neither an image reference nor a spec"),
    ],
)
def test_bad_cache_specs_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_cache_spec(text, "from")


def test_unknown_cache_mode_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="none, inline, local, registry"):
        plan(BuildRequest(cache_mode="turbo"))


def test_wrong_target_lists_the_stages() -> None:
    with pytest.raises(
        UsageError,
        match=r"base, installer, package-slices, layer-cuda-libraries, layer-torch, .*, checked, "
        r"builder, runtime",
    ):
        plan(BuildRequest(target="runtme"))


@pytest.mark.parametrize(
    "stage",
    ["base", "package-slices", "layer-torch", "layer-numpy", "checked", "builder", "runtime"],
)
def test_every_stage_is_a_valid_target(stage: str) -> None:
    assert plan(BuildRequest(target=stage)).buildx_kwargs()["target"] == stage


def test_build_args_are_parsed_and_override_defaults() -> None:
    assert parse_build_args(["A=1", "B=x=y", "C="]) == (("A", "1"), ("B", "x=y"), ("C", ""))
    result = plan(BuildRequest(build_args=("TORCH_VARIANT=cuda",)))
    assert result.buildx_kwargs()["build_args"]["TORCH_VARIANT"] == "cuda"
    for bad in ("NOEQUALS", "=value", "1BAD=x", "BAD KEY=x"):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            parse_build_args([bad])


def test_platforms_are_checked() -> None:
    assert parse_platforms(["linux/amd64,linux/arm64/v8"]) == ("linux/amd64", "linux/arm64/v8")
    with pytest.raises(UsageError, match="os/arch"):
        parse_platforms(["amd64"])


def test_load_with_two_platforms_is_refused() -> None:
    with pytest.raises(UsageError, match="--load takes one platform"):
        plan(BuildRequest(platforms=("linux/amd64", "linux/arm64")))


def test_push_needs_registry_tags_and_loads_with_the_image_exporter() -> None:
    with pytest.raises(UsageError, match="Docker Hub"):
        plan(BuildRequest(push=True, tags=("audiobook-tts:latest",)))
    pushed = plan(BuildRequest(push=True)).buildx_kwargs()
    assert pushed["tags"] == ["127.0.0.1:5000/audiobook-tts:latest"]
    assert pushed["push"] is True and "load" not in pushed
    both = plan(BuildRequest(push=True, load=True)).buildx_kwargs()
    assert both["output"] == {"type": "image", "push": "true"}
    assert names_registry("localhost/x") and names_registry("a.b/x:1") and not names_registry("x/y")


def test_host_ca_bundle_is_a_secret_and_wheelhouse_a_named_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    host = HostPackageSettings(ca_bundle=bundle, index_url="https://mirror.example/simple")
    result = make_plan(settings(), host, BuildRequest(), STAGES, NOW, wheelhouse=tmp_path)
    kwargs = result.buildx_kwargs()
    assert kwargs["secrets"] == [f"id=ca_bundle,src={bundle}"]
    assert kwargs["build_contexts"] == {"wheelhouse": str(tmp_path)}
    assert kwargs["build_args"]["PIP_INDEX_URL"] == "https://mirror.example/simple"
    # Nothing of the bundle's path or content goes into a build argument.
    assert str(bundle) not in " ".join(kwargs["build_args"].values())


def test_verbose_means_plain_progress_and_bad_progress_is_refused() -> None:
    assert plan(BuildRequest(verbose=True)).progress == "plain"
    with pytest.raises(UsageError, match="--progress"):
        plan(BuildRequest(progress="fancy"))


def test_a_reproducible_build_leaves_inline_cache_metadata_out_and_keeps_a_registry_cache() -> None:
    inline = plan(BuildRequest(reproducible=True), source_date_epoch=1)
    assert "cache_to" not in inline.buildx_kwargs()
    assert any("inline cache export left out" in note for note in inline.notes)
    registry = plan(BuildRequest(reproducible=True, cache_mode="registry"), source_date_epoch=1)
    assert registry.buildx_kwargs()["cache_to"]["type"] == "registry"
    assert plan(BuildRequest(push=True)).buildx_kwargs()["cache_to"] == {"type": "inline"}


def test_only_caches_written_outside_the_image_need_an_exporting_builder() -> None:
    def exports(request: BuildRequest) -> bool:
        return exports_cache(settings(), check_request(settings(), request, STAGES))

    assert exports(BuildRequest(cache_mode="registry"))
    assert exports(BuildRequest(cache_mode="local"))
    assert not exports(BuildRequest(cache_mode="inline"))
    assert not exports(BuildRequest(cache_mode="none"))
    assert exports(BuildRequest(cache_mode="none", cache_to=("type=local,dest=/tmp/c",)))


def test_an_engine_that_exports_every_cache_changes_nothing() -> None:
    registry = BuildRequest(cache_mode="registry")
    assert plan(registry) == plan(registry, exporter=CacheExporter(containerd_store=True))
    classic = CacheExporter(containerd_store=False, builder_problem="cannot pull")
    assert plan(BuildRequest(), exporter=classic) == plan(BuildRequest())


def test_the_inline_fallback_reads_the_pushed_image_and_keeps_registry_sources() -> None:
    classic = CacheExporter(containerd_store=False, builder_problem="cannot pull moby/buildkit")
    request = BuildRequest(cache_mode="registry", push=True, tags=("127.0.0.1:5000/x:ci",))
    fallen = plan(request, exporter=classic)
    kwargs = fallen.buildx_kwargs()
    assert kwargs["cache_to"] == {"type": "inline"}
    assert kwargs["cache_from"] == [
        {"type": "registry", "ref": "127.0.0.1:5000/audiobook-tts:buildcache"},
        {"type": "registry", "ref": "127.0.0.1:5000/x:ci"},
    ]
    assert fallen.cache_mode == "inline" and not fallen.builder
    assert fallen.notes[-1] == (
        "cache fallback: registry cache needs the containerd image store or a docker-container "
        "builder, and the builder could not start (cannot pull moby/buildkit); building with "
        "inline cache, read from 127.0.0.1:5000/x:ci"
    )
    fallen_local = plan(BuildRequest(cache_mode="local"), exporter=classic)
    assert fallen_local.local_cache is None
    assert fallen_local.cache_from == (
        (("type", "registry"), ("ref", "127.0.0.1:5000/audiobook-tts:latest")),
    )


def test_a_docker_container_builder_is_named_and_pushes_and_loads_separately() -> None:
    request = BuildRequest(cache_mode="registry", push=True, load=True, tags=("r.io/x:1",))
    built = plan(request, exporter=CacheExporter(containerd_store=False), builder_name="b")
    kwargs = built.buildx_kwargs()
    assert kwargs["builder"] == "b" and kwargs["push"] is True and kwargs["load"] is True
    assert "output" not in kwargs
    assert kwargs["cache_to"]["type"] == "registry"
    assert "--builder b" in built.describe()
    assert built.notes[-1].startswith("registry cache through the docker-container builder b (")


def test_engines_become_a_build_arg_and_set_the_default_tag_apart() -> None:
    default = plan()
    assert default.buildx_kwargs()["build_args"]["ENGINES"] == "espeak,piper"
    assert default.tags[0] == "audiobook-tts:latest"
    espeak_only = plan(BuildRequest(engines=("espeak",)))
    assert espeak_only.tags[0] == "audiobook-tts:cpu-espeak"
    heard = plan(BuildRequest(engines=("piper", "listener")))
    assert heard.buildx_kwargs()["build_args"]["ENGINES"] == "espeak,piper,listener"
    assert heard.tags[0] == "audiobook-tts:cpu-espeak-piper-listener"
    gpu = plan(BuildRequest(engines=("csm",), torch_variant="cuda"))
    assert gpu.buildx_kwargs()["build_args"]["ENGINES"] == "espeak,csm"
    assert gpu.buildx_kwargs()["build_args"]["TORCH_VARIANT"] == "cuda"
    assert gpu.tags == (
        "audiobook-tts:cuda-espeak-csm",
        "127.0.0.1:5000/audiobook-tts:cuda-espeak-csm",
    )
    with pytest.raises(UsageError, match="unknown engine"):
        plan(BuildRequest(engines=("kokoro",)))


def test_an_empty_installer_image_installs_on_the_base_and_says_so() -> None:
    result = plan(installer_image="")
    build_args = dict(result.build_args)
    assert build_args["INSTALLER_IMAGE"] == build_args["BASE_IMAGE"]
    assert any("follow the base image" in note for note in result.notes)


def test_zstd_compression_is_an_image_output_that_stores_and_pushes() -> None:
    pushed = plan(BuildRequest(push=True, load=True, compression="zstd")).buildx_kwargs()
    assert pushed["output"] == {
        "type": "image",
        "compression": "zstd",
        "force-compression": "true",
        "oci-mediatypes": "true",
        "push": "true",
    }
    assert "push" not in pushed and "load" not in pushed
    loaded = plan(BuildRequest(compression="zstd")).buildx_kwargs()
    assert loaded["output"]["compression"] == "zstd" and "push" not in loaded["output"]
    assert plan(BuildRequest()).buildx_kwargs().get("load") is True  # gzip: the default
    assert "compression=zstd" in plan(BuildRequest(compression="zstd")).describe()


def test_an_unknown_compression_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--compression 'lz4' is not one of gzip, zstd"):
        plan(BuildRequest(compression="lz4"))
