"""sscard terminal layer: readers, card sessions, flows, key sources, registry, CLI."""
