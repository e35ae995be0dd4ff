"""Build tooling for the audiobook-tts image, in rooms from the bottom up.

errors, output   the one error type and what is printed for people (every room uses them)
plan/            what to build: settings, Dockerfile, context, target platforms, the buildx call
engine/          running a plan: the Docker adapter (python-on-whales), progress, log, report
platform/        the machine: engine and registry (`inv up`), base image, Debian, emulation
build/           `inv build`: flags -> plan -> run -> report; records, the cache check
locks/           `inv lock` and the lock freshness check
docs/            the README's table of every setting, generated from the code
ci/              `inv ci`, the CodeBuild buildspec and project, `inv doctor`, `inv login`
bench/           `inv bench`: the scenarios, the runner, the published report
invoke_glue      the edge to tasks.py: settings from Invoke's config, errors as one line

A room imports only from the rooms above it in this list (tests/unit/test_imports.py).
"""
