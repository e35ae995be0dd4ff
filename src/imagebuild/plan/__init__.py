"""What to build: settings, Dockerfile, context, target platforms, the plan of one buildx call."""
