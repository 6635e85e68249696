"""Turning user data (arrays, lists, dicts) into checked arrays aligned with a model's inputs."""
