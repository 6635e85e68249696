"""Saving and loading: weights files that cannot carry code, written atomically."""
