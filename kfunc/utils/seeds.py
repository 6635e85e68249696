"""``set_random_seed``: one seed for everything random that kfunc and the user's script draw."""

from kfunc import seeding
from kfunc.random.seed_generator import reset_global_seed_generator


def set_random_seed(seed: int) -> None:
    """Make weight initialization, ``fit``'s shuffling and dropout, ``SeedGenerator(seed=None)`` and
    ``kfunc.random`` draws with ``seed=None`` repeat for the same ``seed``; also seeds Python's
    ``random`` and NumPy's global generator, as Keras does."""
    seeding.set_random_seed(seed)
    reset_global_seed_generator()
