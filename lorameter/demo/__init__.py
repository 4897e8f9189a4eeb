"""The demo (``lorameter demo``): embedded broker, simulated meter fleet, ingest and API."""

from lorameter.demo.run import run_demo

__all__ = ["run_demo"]
