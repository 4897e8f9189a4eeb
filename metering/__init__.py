"""Metering: consumption from cumulative registers and key-date reads (pure, numpy).

``calendar`` turns local calendar intervals into instants; ``register`` turns a meter's readings
into one continuous cumulative curve (rollover, reset, dips, outliers, exchanges, delta counts);
``consumption`` reads that curve at interval bounds and at key dates; ``alarms`` holds the
alarm rules (one table row per kind).
"""
