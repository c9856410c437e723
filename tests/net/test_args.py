"""Tests for xgrad._net.args: the network's dtype is one its library has on its device."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import run_without_x64

from xgrad import TwoLayerNet
from xgrad._net.args import network_dtype


def test_float64_on_a_device_without_it_is_refused_not_narrowed():
    strict = pytest.importorskip("array_api_strict")
    device = strict.Device("no_float64")
    for dtype, given in (("float64", ""), (None, " (the default)"), (strict.float64, "")):
        with pytest.raises(ValueError, match=(
                rf"`dtype` 'float64'{given.replace('(', '[(]').replace(')', '[)]')} is not available: "
                r"array_api_strict has no float64 on device .*no_float64.*; to get it, use a device that has it; "
                r"or pass dtype='float32'")):
            TwoLayerNet(4, 3, 2, xp=strict, device=device, dtype=dtype)
    net = TwoLayerNet(4, 3, 2, xp=strict, device=device, dtype="float32")
    assert net.dtype == strict.float32 and net.params["W1"].dtype == strict.float32
    with pytest.raises(ValueError, match="`dtype` 'float64' is not available"):
        net.astype("float64")


def test_a_library_that_cannot_be_asked_keeps_the_dtype_asked_for():
    assert network_dtype(np, "cpu", "float64") == np.float64
    assert network_dtype(np, "cpu", np.float32) == np.float32
    with pytest.raises(ValueError, match="`dtype` must be 'float32' or 'float64'"):
        network_dtype(np, "cpu", "float16")


def test_jax_without_x64_refuses_float64_and_says_how_to_get_it():
    pytest.importorskip("jax")
    script = (
        "import os, tempfile, numpy as np, jax.numpy as jnp, xgrad\n"
        "saved = os.path.join(tempfile.mkdtemp(), 'net.npz')\n"
        "xgrad.TwoLayerNet(4, 3, 2, dtype='float64').save(saved)\n"
        "hint = 'jax.config.update(\"jax_enable_x64\", True) before any array is made; or pass dtype=\\'float32\\''\n"
        "rng = np.random.default_rng(0)\n"
        "data = ((rng.random((50, 6)), rng.integers(0, 3, 50)), (rng.random((20, 6)), rng.integers(0, 3, 20)))\n"
        "calls = [lambda: xgrad.TwoLayerNet(4, 3, 2, xp=jnp, dtype='float64'),\n"
        "         lambda: xgrad.TwoLayerNet(4, 3, 2, xp=jnp),\n"
        "         lambda: xgrad.TwoLayerNet(4, 3, 2, backend='jax', dtype='float32').astype('float64'),\n"
        "         lambda: xgrad.train('jax', data=data, hidden_size=4, iters=5, batch_size=10, dtype='float64',\n"
        "                             progress=False),\n"
        "         lambda: xgrad.TwoLayerNet.load(saved, backend='jax')]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as exc:\n"
        "        assert str(exc).startswith(\"`dtype` 'float64'\"), exc\n"
        "        assert 'jax has no float64 on device' in str(exc) and hint in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError('float64 was not refused')\n"
        "net = xgrad.TwoLayerNet(4, 3, 2, xp=jnp, dtype='float32')\n"
        "assert net.params['W1'].dtype == jnp.float32\n"
        "assert xgrad.TwoLayerNet.load(saved, backend='jax', dtype='float32').dtype == jnp.float32\n"
    )
    done = run_without_x64(script)
    assert done.returncode == 0, done.stderr
