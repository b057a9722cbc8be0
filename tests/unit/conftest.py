"""Settings shared by the unit tests."""

from hypothesis import settings

# No per-example time limit: the tests assert behaviour, never speed, and a loaded machine
# (CI beside a benchmark) would otherwise fail an example for being slow.
settings.register_profile("unit", deadline=None)
settings.load_profile("unit")
