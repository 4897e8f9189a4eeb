"""lorameter: LoRaWAN meter uplinks to trustworthy readings (composition root and CLI)."""

__version__ = "0.1.0"
