"""Finds the decoders in ``decoders/devices`` and looks them up by id or TTS version_ids."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from functools import lru_cache
from types import MappingProxyType, ModuleType

import decoders.devices
from decoders.core import Decoder

__all__ = ["all_decoders", "by_id", "by_lorawan_id", "discover"]


def discover(package: ModuleType = decoders.devices) -> dict[str, Decoder]:
    """Import every non-underscore module of ``package``; its ``DECODER`` gets the module name."""
    found: dict[str, Decoder] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        decoder = getattr(module, "DECODER", None)
        if not isinstance(decoder, Decoder):
            raise TypeError(f"{module.__name__} defines no DECODER = Decoder(...)")
        found[info.name] = dataclasses.replace(decoder, id=info.name)
    return found


@lru_cache(maxsize=1)
def _registry() -> MappingProxyType[str, Decoder]:
    return MappingProxyType(discover())


@lru_cache(maxsize=1)
def _lorawan_index() -> MappingProxyType[str, Decoder]:
    index: dict[str, Decoder] = {}
    for decoder in _registry().values():
        for lorawan_id in decoder.lorawan_ids:
            key = lorawan_id.lower()
            if key in index:
                raise ValueError(f"TTS id {lorawan_id} claimed by {index[key].id} and {decoder.id}")
            index[key] = decoder
    return MappingProxyType(index)


def all_decoders() -> MappingProxyType[str, Decoder]:
    """Every decoder, by id."""
    return _registry()


def by_id(decoder_id: str) -> Decoder | None:
    """The decoder with this id (the module name), or None."""
    return _registry().get(decoder_id)


def by_lorawan_id(brand_id: str, model_id: str) -> Decoder | None:
    """The decoder a TTS Device Repository ``version_ids`` brand/model maps to, or None."""
    return _lorawan_index().get(f"{brand_id}/{model_id}".lower())
