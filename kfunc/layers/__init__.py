"""``kfunc.layers``: every layer class and the merge functions, with Keras's names."""

from kfunc.layers.adaptive_pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
)
from kfunc.layers.attention import AdditiveAttention, Attention
from kfunc.layers.base import Layer
from kfunc.layers.conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose
from kfunc.layers.conv_depthwise import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from kfunc.layers.core import Activation, Dense, Dropout, Embedding, Lambda
from kfunc.layers.input import Input, InputLayer
from kfunc.layers.input_spec import InputSpec
from kfunc.layers.masking import Masking
from kfunc.layers.merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from kfunc.layers.multi_head_attention import MultiHeadAttention
from kfunc.layers.normalization import BatchNormalization, GroupNormalization, LayerNormalization
from kfunc.layers.op_layer import OpLayer
from kfunc.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from kfunc.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from kfunc.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from kfunc.layers.einsum_dense import EinsumDense
from kfunc.layers.rms_normalization import RMSNormalization
from kfunc.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from kfunc.layers.group_query_attention import GroupedQueryAttention, GroupQueryAttention
from kfunc.layers.spectral_normalization import SpectralNormalization
from kfunc.layers.jax_layer import FlaxLayer, JaxLayer
from kfunc.layers.regularization import (
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from kfunc.layers.reshape import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Flatten,
    Permute,
    RepeatVector,
    Reshape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from kfunc import registry as _registry
from kfunc.core.variable import Variable
from kfunc.layers.wrappers import Bidirectional, TimeDistributed, Wrapper
from kfunc.layers.activation_layers import ELU, Identity, LeakyReLU, PReLU, ReLU, Softmax
from kfunc.layers.activity_regularization import ActivityRegularization
from kfunc.layers.alpha_dropout import AlphaDropout
from kfunc.layers.augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from kfunc.layers.categorical import CategoryEncoding, Discretization
from kfunc.layers.image_preprocessing import CenterCrop, Resizing
from kfunc.layers.preprocessing import Normalization, Rescaling, UnitNormalization

# Keras's short aliases.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
from kfunc.layers.serialization import deserialize, serialize
from kfunc.layers.color_augmentation import (
    RandomColorDegeneration,
    RandomColorJitter,
    RandomGrayscale,
    RandomHue,
    RandomInvert,
    RandomPosterization,
    RandomSaturation,
    RandomSharpness,
    Solarization,
)
from kfunc.layers.image_statistics import AutoContrast, Equalization
from kfunc.layers.geometric_augmentation import RandomElasticTransform, RandomPerspective, RandomShear
from kfunc.layers.mixing_augmentation import CutMix, MixUp
from kfunc.layers.pipeline import Pipeline
from kfunc.layers.policy_augmentation import AugMix, RandAugment
from kfunc.layers.region_augmentation import RandomCrop, RandomErasing, RandomGaussianBlur
from kfunc.layers.reversible_embedding import ReversibleEmbedding
from kfunc.layers.spectrogram import MelSpectrogram, STFTSpectrogram

__all__ = [name for name in dir() if not name.startswith("_")]


def _builtin_layer_classes() -> dict:
    """Every layer class this package exports, by class name (what model files may name)."""
    exported = globals()
    return {
        cls.__name__: cls
        for cls in exported.values()
        if isinstance(cls, type) and issubclass(cls, Layer) and cls is not Layer
    }


_registry.add_builtins("layer", _builtin_layer_classes)
