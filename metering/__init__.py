"""Metering: consumption from cumulative registers and the alarm rules (pure: numpy, no I/O)."""
