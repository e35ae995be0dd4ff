"""Audiobook text-to-speech: an OpenAI-style speech API over pluggable engines."""

__version__ = "0.1.0"
