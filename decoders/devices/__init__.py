"""Device decoders, one module per meter model; the registry discovers every module here."""
