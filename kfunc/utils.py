"""``kfunc.utils``: seeding, session and plotting helpers."""

from kfunc.naming import reset_names
from kfunc.plotting import plot_model
from kfunc.seeding import set_random_seed


def clear_session() -> None:
    """Restart default layer names (``dense``, ``dense_1`` ...), as Keras's ``clear_session``."""
    reset_names()


__all__ = ["clear_session", "plot_model", "set_random_seed"]
