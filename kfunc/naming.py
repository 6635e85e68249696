"""Unique default names for layers and models, as Keras gives them: dense, dense_1, dense_2 ..."""

import re
from collections import defaultdict

_counters: defaultdict[str, int] = defaultdict(int)
_uids: defaultdict[str, int] = defaultdict(int)  # Keras's backend.get_uid, apart from layer names


def to_snake_case(class_name: str) -> str:
    """``"Conv2DTranspose"`` -> ``"conv2d_transpose"``; ``"LSTM"`` -> ``"lstm"``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix: str) -> str:
    """The first call with a prefix returns it as is, later calls append ``_1``, ``_2`` ..."""
    count = _counters[prefix]
    _counters[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def next_uid(prefix: str) -> int:
    """1 for the first call with ``prefix``, then 2, 3 ... (Keras's ``backend.get_uid``)."""
    _uids[prefix] += 1
    return _uids[prefix]


def reset_names() -> None:
    """Forget every name and uid handed out, so the next ``Dense`` is called ``dense`` again."""
    _counters.clear()
    _uids.clear()
