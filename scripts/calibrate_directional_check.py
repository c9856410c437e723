"""Calibrate ``DIRECTIONAL_TOLERANCE``: what a correct backprop reaches in
:func:`xgrad.directional_check`, and what known-wrong gradients reach.

For each (parameter dtype, difference dtype) pair: the 784-50-10 network,
sigmoid and ReLU, seeds 0-2, 1, 3, 10 and 100 MNIST images, three
directions, the default step and ``h=1e-4``. Prints per pair the worst
relative error of the correct gradient, the largest rounding bound in the
same units (``rounding / (|numerical| + |backprop|)``), and per kind of
wrong gradient (a layer zeroed, sign-flipped, doubled or halved) the
smallest relative error and how many cases the current tolerance fails.

    XGRAD_DATA_DIR=... python scripts/calibrate_directional_check.py [--jax]
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np

import xgrad
from xgrad._net.directional import DIRECTIONAL_TOLERANCE

WRONG = {"zeroed": 0.0, "flipped": -1.0, "doubled": 2.0, "halved": 0.5}


def backends(jax: bool) -> list[tuple[str, object, str]]:
    import array_api_strict

    out = [("float64/float64", xgrad.resolve_backend("numpy"), "float64"),
           ("float32/float64", xgrad.resolve_backend("numpy"), "float32"),
           ("float32/float32", xgrad.resolve_backend("array_api_strict",
                                                     device=array_api_strict.Device("no_float64")), "float32")]
    if jax:
        out.append(("float32/float32 (JAX)", xgrad.resolve_backend("jax"), "float32"))
    return out


def wrong(net, name, factor):
    right = net.gradient

    def gradient(x, t):
        g = right(x, t)
        return {**g, name: factor * g[name]}
    return gradient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax", action="store_true", help="also JAX (without x64 unless enabled)")
    args = parser.parse_args()
    (images, labels), _ = xgrad.load_mnist()
    warnings.simplefilter("ignore", RuntimeWarning)  # inconclusive results are counted instead
    for pair, b, dtype in backends(args.jax):
        worst = (0.0, None)
        worst_default = 0.0
        rounding = 0.0
        inconclusive = 0
        caught: dict[str, list[float]] = {}
        for act, seed, n, d, h in itertools.product(["sigmoid", "relu"], range(3), [1, 3, 10, 100], range(3),
                                                    [None, 1e-4]):
            idx = np.random.default_rng(seed).choice(len(images), n, replace=False)
            net = xgrad.TwoLayerNet(784, 50, 10, activation=act, dtype=dtype, seed=seed, xp=b.xp, device=b.device)
            x, t = b.asarray(images[idx], dtype=net.dtype), b.asarray(labels[idx])
            c = xgrad.directional_check(net, x, t, seed=d, h=h)
            worst = max(worst, (c.rel_error, (act, seed, n, d, h)), key=lambda w: w[0])
            worst_default = max(worst_default, c.rel_error) if h is None else worst_default
            rounding = max(rounding, c.rounding / (abs(c.numerical) + abs(c.backprop)))
            inconclusive += not c.conclusive
            for (kind, factor), layer in itertools.product(WRONG.items(), ["W1", "b1", "W2", "b2"]):
                net.gradient = wrong(net, layer, factor)
                bad = xgrad.directional_check(net, x, t, seed=d, h=h)
                caught.setdefault(f"{layer} {kind}", []).append(0.0 if bad.passed else 1.0)
                del net.gradient
        tol = DIRECTIONAL_TOLERANCE.get(tuple(pair.split(" ")[0].split("/")))
        print(f"{pair}: worst correct rel_error {worst[0]:.2e} at {worst[1]} "
              f"({worst_default:.2e} with the default step), worst rounding "
              f"{rounding:.2e}, inconclusive {inconclusive}, tolerance {tol:.1e}")
        print("  wrong gradients caught: " + ", ".join(f"{k} {np.mean(v):.0%}" for k, v in caught.items()))


if __name__ == "__main__":
    main()
