"""The machine a build runs on: engine, registry, base image, Debian, emulation, sandboxes."""
