"""A network handed to :func:`xgrad.train`: where it lives, and whether it can train."""

from __future__ import annotations

from typing import Any

from xgrad._infra.backend import Backend, library_of, normalise_name, resolve_backend

__all__ = ["check_net", "net_backend"]


def net_backend(net: Any, backend: str | Backend, device: Any) -> Backend:
    """The backend of `net`; an explicit `backend` or `device` must agree with it."""
    from xgrad._net.net import TwoLayerNet

    if not isinstance(net, TwoLayerNet):
        raise TypeError(f"`net` must be a TwoLayerNet; got {type(net).__name__}")
    lib = library_of(net.xp)
    if lib is None:
        raise ValueError(f"`net` lives on an unknown array library ({getattr(net.xp, '__name__', net.xp)})")
    name = lib.name
    if not (isinstance(backend, str) and normalise_name(backend) == "auto"):
        asked = resolve_backend(backend, device=device)
        if asked.name != name:
            raise ValueError(f"`net` lives on {name} but `backend` is {asked.name!r}; leave `backend` out, "
                             "or load the net onto that backend")
    if device is not None and str(device) != str(net.device):
        raise ValueError(f"`net` lives on device {net.device} but `device` is {device}; leave `device` out, "
                         "or load the net onto that device")
    return Backend(name, net.xp, net.device)


def check_net(net: Any, n_features: int) -> None:
    """Refuse a network that cannot train on the data: other inputs, non-finite weights."""
    from xgrad._infra.host import to_numpy

    if net.sizes[0] != n_features:
        raise ValueError(f"the data have {n_features} features but `net` expects {net.sizes[0]}")
    import numpy as np  # the host edge: one look at the starting weights

    for k, v in net.params.items():
        host = to_numpy(v)
        if not np.all(np.isfinite(host)):
            raise ValueError(f"`net` has {int(np.sum(~np.isfinite(host)))} NaN or infinite values in {k}; "
                             "it cannot be trained (load or build a finite network)")
