#!/bin/sh
# Writes Mosquitto's password file from MQTT_USER / MQTT_PASSWORD (.env), then runs the broker.
set -eu
umask 077
: > /mosquitto/data/passwd
mosquitto_passwd -b /mosquitto/data/passwd "$MQTT_USER" "$MQTT_PASSWORD"
chown mosquitto:mosquitto /mosquitto/data/passwd 2>/dev/null || true
exec mosquitto -c /mosquitto/config/mosquitto.conf
