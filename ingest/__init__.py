"""Network server to store: envelopes, MQTT, the pipeline, replay and the demo fleet."""
