"""Hypothesis settings for rose-estimator tests: derandomised, no deadline."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "rose", derandomize=True, deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("rose")
