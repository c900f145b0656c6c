"""``pgrunbooks list | run | suite`` (the runbook engine)."""


def register(sub) -> None:
    """Placeholder until the engine lands."""
