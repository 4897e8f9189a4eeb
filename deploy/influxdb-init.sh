#!/bin/bash
# Runs once, after the influxdb:2 image's first-start setup (it sets DOCKER_INFLUXDB_INIT_* and
# the CLI config). lorameter and Grafana speak InfluxDB's 1.x-compatible API (/write, /query with
# InfluxQL), which finds a bucket through a DBRP mapping: database "lorameter", retention policy
# "autogen" -> the setup bucket. Grafana gets a v1 user that can only read that bucket.
set -euo pipefail

influx v1 dbrp create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --db "$LORAMETER_DATABASE" \
    --rp autogen \
    --default

influx v1 auth create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --username "$GRAFANA_INFLUX_USER" \
    --password "$GRAFANA_INFLUX_PASSWORD" \
    --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --description "Grafana (read-only, InfluxQL)"
