"""``kfunc.utils``: seeding, session and plotting helpers."""

from kfunc.mixed_precision import reset_global_policy
from kfunc.naming import reset_names
from kfunc.plotting import plot_model
from kfunc.seeding import set_random_seed


def clear_session() -> None:
    """Restart default layer names (``dense``, ``dense_1`` ...) and set the global dtype policy back
    to ``"float32"``, as Keras's ``clear_session`` does."""
    reset_names()
    reset_global_policy()


__all__ = ["clear_session", "plot_model", "set_random_seed"]
