"""Guide section 7: a residual connection around a convolution, z = x + conv(x)."""

import numpy as np

import kfunc as keras
from kfunc.layers import Conv2D, Input
from kfunc.models import Model

keras.utils.set_random_seed(0)
# input tensor for a 3-channel image (the guide's is 256x256)
x = Input(shape=(64, 64, 3))
# 3x3 conv with 3 output channels (same as input channels)
conv = Conv2D(3, (3, 3), padding="same")
y = conv(x)
# this returns x + y.
z = keras.layers.add([x, y])
model = Model(x, z)

images = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
residual = model.predict(images) - images
branch = Model(x, y).predict(images)
print(f"z = x + y: {z.shape}; the residual equals the conv branch: {np.allclose(residual, branch, atol=1e-5)}")
