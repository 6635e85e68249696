"""``kfunc.utils``: Keras 3's utilities (``get_file`` is left out: kfunc never downloads)."""

from kfunc.backend import clear_session, is_keras_tensor, standardize_dtype
from kfunc.interactive_logging import (
    disable_interactive_logging,
    enable_interactive_logging,
    is_interactive_logging_enabled,
)
from kfunc.plotting import model_to_dot, plot_model
from kfunc.saving import (
    CustomObjectScope,
    custom_object_scope,
    deserialize_keras_object,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    serialize_keras_object,
)
from kfunc.train.progress import Progbar
from kfunc.utils.dataset_split import split_dataset
from kfunc.utils.numerical import normalize, to_categorical
from kfunc.utils.py_dataset import PyDataset, Sequence
from kfunc.utils.seeds import set_random_seed
from kfunc.utils.sequences import pad_sequences
from kfunc.utils.structures import get_source_inputs, pack_x_y_sample_weight, unpack_x_y_sample_weight

__all__ = [
    "CustomObjectScope",
    "Progbar",
    "PyDataset",
    "Sequence",
    "clear_session",
    "custom_object_scope",
    "deserialize_keras_object",
    "disable_interactive_logging",
    "enable_interactive_logging",
    "get_custom_objects",
    "get_registered_name",
    "get_registered_object",
    "get_source_inputs",
    "is_interactive_logging_enabled",
    "is_keras_tensor",
    "model_to_dot",
    "normalize",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "plot_model",
    "register_keras_serializable",
    "serialize_keras_object",
    "set_random_seed",
    "split_dataset",
    "standardize_dtype",
    "to_categorical",
    "unpack_x_y_sample_weight",
]
