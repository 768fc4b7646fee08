"""Shipped configs: examples, chips/ and energy/ tables (installed as accel_sim.presets)."""
