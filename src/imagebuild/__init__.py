"""Build tooling for the audiobook-tts image: config, local platform, plan, buildx runner, reports."""
