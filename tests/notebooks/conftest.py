"""Fixture notebooks for the runner's tests: executed by the tests, never collected by nbval."""

collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]
