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

# Downloads and cache discovery never touch the user's real caches, catalogs or mirrors.
_caches = tempfile.mkdtemp(prefix="jaxbrain-test-caches-")
for _name in ("JAXBRAIN_HOME", "BRAINIO_HOME", "TORCH_HOME"):
    os.environ[_name] = os.path.join(_caches, _name.lower())
for _name in ("JAXBRAIN_CATALOG", "JAXBRAIN_MIRROR"):
    os.environ.pop(_name, None)

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


def pytest_collection_modifyitems(config, items):
    """Tests that reach the real hosts run only when asked (never in CI)."""
    if os.environ.get("JAXBRAIN_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="reaches the real hosts; set JAXBRAIN_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)
