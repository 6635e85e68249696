"""Guide section 6: an Inception module: three towers over one image, concatenated."""

import numpy as np

import kfunc as keras
from kfunc.layers import Conv2D, Input, MaxPooling2D
from kfunc.models import Model

keras.utils.set_random_seed(0)
size = 32  # the guide uses 256x256 images; the module works at any size

input_img = Input(shape=(size, size, 3))
tower_1 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
tower_1 = Conv2D(64, (3, 3), padding="same", activation="relu")(tower_1)
tower_2 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
tower_2 = Conv2D(64, (5, 5), padding="same", activation="relu")(tower_2)
tower_3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(input_img)
tower_3 = Conv2D(64, (1, 1), padding="same", activation="relu")(tower_3)
output = keras.layers.concatenate([tower_1, tower_2, tower_3], axis=1)

model = Model(input_img, output)
print(f"towers {tower_1.shape}, {tower_2.shape}, {tower_3.shape} -> concatenated on axis 1: {output.shape}")
images = np.random.default_rng(0).random((4, size, size, 3), dtype=np.float32)
print(f"on 4 images: {model.predict(images).shape}, {model.count_params():,} parameters")
