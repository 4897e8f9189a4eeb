"""The HTTP API (FastAPI): readings, devices, decoders, dead letters and health."""

from importlib.metadata import version

# From the installed distribution: api/ sits below the lorameter package and must not import it.
__version__ = version("lorameter")
