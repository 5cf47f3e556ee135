"""sscard emulator: the virtual card OS and PSAM, attached to vsmartcard vpcd slots."""
