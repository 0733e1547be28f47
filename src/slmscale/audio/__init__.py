"""Audio I/O, offline TTS backends, corpus manifests and importers."""
