"""The test suite (a regular package: an installed distribution's top-level `tests` package,
such as the clabe package ships, must not shadow it)."""
