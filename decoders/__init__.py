"""Payload bytes to normalised readings: pure decoders, one file per meter in ``devices/``."""
