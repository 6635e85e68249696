"""``kfunc.utils``: seeding and session helpers."""

from kfunc.naming import reset_names
from kfunc.seeding import set_random_seed


def clear_session() -> None:
    """Restart default layer names (``dense``, ``dense_1`` ...), as Keras's ``clear_session``."""
    reset_names()


__all__ = ["clear_session", "set_random_seed"]
