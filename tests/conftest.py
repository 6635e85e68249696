"""Test configuration: several CPU devices (for sharding tests) and deterministic names."""

import os

# Must happen before jax initialises its backends. Added to flags a runner may already set (GPU
# images often do), so the 4 CPU devices of the sharding tests exist on every runner.
_flags = os.environ.get("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=4".strip()
os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import pytest  # noqa: E402

import kfunc  # noqa: E402

# Accelerators multiply float32 at reduced (TF32-like) precision by default; the tests compare
# numbers against NumPy and Keras at float32 precision.
if jax.default_backend() != "cpu":
    jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(autouse=True)
def _fresh_names():
    """Each test starts with default names dense, dense_1 ... and a fixed seed. Without a garbage
    collection per test (0.1 s each with Keras and JAX loaded: over a minute of the default run);
    Python collects on its own."""
    kfunc.utils.clear_session(free_memory=False)
    kfunc.utils.set_random_seed(0)
    yield


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices: {jax.devices()}"
