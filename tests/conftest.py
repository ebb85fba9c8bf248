"""Test-process setup: 8 fake CPU devices (sharding tests) and float64 for reference checks.

XLA_FLAGS must be set before jax is first imported, hence at the top of conftest.
"""

import os
import tempfile

# Compiled programs are cached on disk and shared by every test and every subprocess a test
# starts (they inherit the environment): the many runs of identical train steps and kernels
# compile once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "jaxbrain-test-xla-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
