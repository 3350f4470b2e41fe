"""Migration scripts, one revision per file, applied in their `down_revision` order."""
