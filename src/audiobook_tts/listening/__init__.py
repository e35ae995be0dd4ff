"""The listener: hears what an engine said (faster-whisper), scores how it sounds (DNSMOS),
and says which sentences do not say their text."""
