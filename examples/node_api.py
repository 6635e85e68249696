"""Guide section 5: layer nodes. Each call of a layer adds a node, indexed 0, 1, 2 ..."""

import kfunc as keras
from kfunc.layers import LSTM, Conv2D, Input

a = Input(shape=(280, 256))
lstm = LSTM(32)
encoded_a = lstm(a)
assert lstm.output == encoded_a
print(f"one node: lstm.output is the encoding {encoded_a.shape}")

a = Input(shape=(280, 256))
b = Input(shape=(280, 256))
lstm = LSTM(32)
encoded_a = lstm(a)
encoded_b = lstm(b)
try:
    lstm.output
except AttributeError as error:
    print(f"two nodes: AttributeError: {error}")
assert lstm.get_output_at(0) == encoded_a
assert lstm.get_output_at(1) == encoded_b
print("get_output_at(0) and get_output_at(1) return each call's tensor")

a = Input(shape=(32, 32, 3))
b = Input(shape=(64, 64, 3))
conv = Conv2D(16, (3, 3), padding="same")
conved_a = conv(a)
# Only one input so far, the following will work:
assert conv.input_shape == (None, 32, 32, 3)
conved_b = conv(b)
# now the `.input_shape` property wouldn't work, but this does:
assert conv.get_input_shape_at(0) == (None, 32, 32, 3)
assert conv.get_input_shape_at(1) == (None, 64, 64, 3)
print(f"conv input shapes per node: {conv.get_input_shape_at(0)}, {conv.get_input_shape_at(1)}")
print(f"kfunc {keras.__version__}: the node API works as the guide says")
