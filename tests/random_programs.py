"""Random programs on float64 vectors, shared by the lazy-result and deferred-value tests.

``random_program(seed, n)`` runs one in tapegrad: the lazy ops, reads of intermediate values,
in-place writes under no_grad (also through a slice), slices and cat (of lazy values too),
0-d tensors with arrays, squares, ops that are not lazy, sums. It returns the output, the
gradients and the values read, for tests that compare two ways of running the same program
bit for bit.
"""
from __future__ import annotations

import numpy as np

import tapegrad


def random_program(seed, n=None):
    """One program: on vectors of ``n`` elements, or of 2, 3, 16 or 100 drawn from the seed
    (drawn either way, so that a seed gives the same program whatever ``n``)."""
    rng = np.random.default_rng(seed)
    drawn = int(rng.choice([2, 3, 16, 100]))
    n = drawn if n is None else n
    a = rng.uniform(-1, 1, n)
    x = tapegrad.tensor(a, requires_grad=True)
    w = tapegrad.tensor(a[::-1] * 0.5, requires_grad=True)
    vals, reads = [x, w, x * 1.0], []
    for _ in range(int(rng.integers(5, 60))):
        u, v = vals[rng.integers(len(vals))], vals[rng.integers(len(vals))]
        op = int(rng.integers(21))
        c = float(rng.uniform(-2, 2))
        if op == 0:
            r = u + v
        elif op == 1:
            r = u - v
        elif op == 2:
            r = u * v
        elif op == 3:
            r = u * c
        elif op == 4:
            r = c - u
        elif op == 5:
            r = u / [3.0, 0.5, -7][int(rng.integers(3))]
        elif op == 6:
            r = tapegrad.tanh(u)
        elif op == 7:
            r = tapegrad.sin(u)
        elif op == 8:
            r = u.cos()
        elif op == 9:
            r = -u
        elif op == 10:
            r = u + 0.25
        elif op == 11:  # a read: the value is computed now
            reads.append(u.detach().numpy().copy())
            r = u * 1.0
        elif op == 12:
            r = tapegrad.cat([u[:1], u[1:] * 0.5]) if n > 1 else u * 2.0
        elif op == 13:
            r = u.exp() * 0.1  # not lazy: reads u
        elif op == 14:
            r = u * 1.0
            with tapegrad.no_grad():
                r.add_(0.125)  # in place on a lazy result
        elif op == 16 and n >= 4:  # slices of lazy values, and their cat, lazy too
            k = int(rng.integers(2, n - 1))
            r = tapegrad.cat([u[k:], v[:k]])
        elif op == 17 and n >= 4:  # a slice of a slice, and a cat with a one-element part
            r = tapegrad.cat([u[1:][::2][:1], u[::2][1:], u[1:][::2]]) if n % 2 == 0 else u * v
        elif op == 18 and n >= 4:  # an in-place write through a lazy slice reaches its base
            r = u * 1.0
            s = r[1:]
            with tapegrad.no_grad():
                s.mul_(2.0)
        elif op == 19:  # a 0-d tensor with an array, the scalar first (lazy: _lazy_scalar)
            r = v.sum() * 0.5 - u
        elif op == 20:  # an element times an array, and a square (lazy too)
            r = u[0] * v + u ** 2
        else:
            r = u * v.sum()
        vals.append(r)
    out = sum((t * (i + 1)).sum() for i, t in enumerate(vals[-4:]))
    out.backward()
    grads = [np.zeros(n) if t.grad is None else t.grad.numpy().copy() for t in (x, w)]
    return [np.array(out.item()), *grads, *reads]
