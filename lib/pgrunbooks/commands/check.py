"""``pgrunbooks check`` (the checks registry without a notebook)."""


def register(sub) -> None:
    """Placeholder until the checks registry lands."""
