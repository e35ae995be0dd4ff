"""Build tooling for the audiobook-tts image: config, platform, plan, buildx runner, reports."""
