"""Fixture notebooks for the engine's tests (tests/engine/): executed by the tests, never collected by nbval."""

collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]
