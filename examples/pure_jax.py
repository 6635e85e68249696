"""A kfunc model is plain JAX: lower it to init/apply and train it with a hand-written loop.

``kfunc.lower(model)`` returns two pure functions; here they run inside our own ``jax.jit`` +
``jax.grad`` + optax loop, and ``jax.vmap`` gives per-example gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import kfunc
from kfunc.layers import Dense, Input
from kfunc.models import Model

inputs = Input(shape=(8,))
hidden = Dense(32, activation="tanh")(inputs)
model = Model(inputs, Dense(1)(hidden))

init, apply = kfunc.lower(model)
params, state = init(jax.random.key(0))  # nested dicts: {"dense": {"kernel", "bias"}, ...}
print("params:", jax.tree_util.tree_map(jnp.shape, params))

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 8)).astype(np.float32)
y = np.sin(x.sum(axis=1, keepdims=True)).astype(np.float32)


def loss_fn(params, xb, yb):
    predictions, _ = apply(params, state, xb)
    return jnp.mean((predictions - yb) ** 2)


optimizer = optax.adam(1e-2)
opt_state = optimizer.init(params)


@jax.jit
def train_step(params, opt_state, xb, yb):
    loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


for epoch in range(5):
    for start in range(0, 256, 32):
        params, opt_state, loss = train_step(params, opt_state, x[start : start + 32], y[start : start + 32])
    print(f"epoch {epoch + 1}: loss {float(loss_fn(params, x, y)):.4f}")

# Per-example gradients: vmap the gradient over the batch axis.
per_example = jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(params, x[:16, None], y[:16, None])
print("per-example kernel gradients:", per_example["dense"]["kernel"].shape)

# The trained weights go back into the model, which predicts with them.
model.set_variables(kfunc.Variables(params, state))
print("model.predict agrees with apply:", np.allclose(model.predict(x[:4]), apply(params, state, x[:4])[0], atol=1e-6))
