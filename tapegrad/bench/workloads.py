"""The benchmark workloads, each written once per API style.

A workload's *PyTorch-style* function takes the module as its first argument, so the very same
source runs on PyTorch and on tapegrad (``fn(torch, params, consts)`` with ``torch`` bound to
either): a ratio between the two then measures the engines, not two ports of the code. The
*NumPy-style* function takes a NumPy-like module (``autograd.numpy`` or ``jax.numpy``) the same
way; where the PyTorch-style source only uses names both APIs share (``tanh``, ``sin``, ``sum``,
``@``, indexing, ``+ - *``) it *is* the NumPy-style source too. The *scalar* function works on
Python lists of scalar objects (``micrograd.engine.Value``) for the workloads that are scalar
programs to begin with.

Every function returns the output whose gradient is taken: a 0-d value, or, for ``seed_loop``,
a vector whose vector-Jacobian product with ``Case.seed`` is taken (``y.backward(v)``).

The cmpad workloads (``det_by_minor``, ``llsq_obj``, ``an_ode``) follow the definitions of the
cmpad benchmark (github.com/bradbell/cmpad), re-derived here from its documentation.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``fn(module, params, consts) -> output``: ``module`` is ``torch``/``tapegrad`` or
#: ``autograd.numpy``/``jax.numpy``, ``params`` the differentiated inputs, ``consts`` the rest.
ModuleFn = Callable[[Any, Sequence[Any], Mapping[str, Any]], Any]
#: ``fn(params, consts) -> output`` on lists of scalar objects (micrograd ``Value``).
ScalarFn = Callable[[Sequence[Any], Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Case:
    """One instance of a workload: float64 inputs shared by every engine.

    ``params`` are differentiated; ``consts`` hold NumPy arrays (converted once to each engine's
    array type, outside the timed region) and plain Python values; ``seed`` is the cotangent of
    a non-scalar output (``None``: the output is 0-d and seeded with 1).
    """

    params: tuple[np.ndarray, ...]
    consts: Mapping[str, Any]
    seed: np.ndarray | None = None


@dataclass(frozen=True)
class Workload:
    """A gradient computation written once per API style, with its full and tiny sizes.

    ``jit`` is False when the function has data-dependent Python control flow that
    ``jax.jit`` cannot trace (and ``lax.while_loop`` has no reverse-mode derivative).
    """

    name: str
    summary: str
    make: Callable[..., Case]
    torch_fn: ModuleFn
    np_fn: ModuleFn | None = None
    scalar_fn: ScalarFn | None = None
    sizes: Mapping[str, Any] = field(default_factory=dict)
    tiny: Mapping[str, Any] = field(default_factory=dict)
    jit: bool = True

    def case(self, tiny: bool = False) -> Case:
        """Build the inputs (deterministic: every engine and every run sees the same numbers)."""
        return self.make(**(self.tiny if tiny else self.sizes))


def _rng(name: str) -> np.random.Generator:
    """A generator seeded by the workload's name, so inputs never depend on run order."""
    return np.random.default_rng(sum(ord(ch) * 31**i for i, ch in enumerate(name)) % 2**32)


# --- det_by_minor ------------------------------------------------------------------------------

def det_of_minor(a: Any, n: int, rows: tuple[int, ...], cols: tuple[int, ...]) -> Any:
    """Determinant of the minor ``rows x cols`` of the n x n matrix ``a`` (flat, row-major).

    Expansion by minors along the minor's first row, as cmpad's ``det_of_minor``: only scalar
    indexing and ``+ - *`` on scalars, O(n!) operations. The first term starts the sum (cmpad
    starts from a zero constant; adding it would record one useless op per minor).
    """
    r0 = rows[0]
    if len(rows) == 1:
        return a[r0 * n + cols[0]]
    sub_rows = rows[1:]
    det = None
    for j, c in enumerate(cols):
        term = a[r0 * n + c] * det_of_minor(a, n, sub_rows, cols[:j] + cols[j + 1:])
        if det is None:
            det = term
        elif j % 2:
            det = det - term
        else:
            det = det + term
    return det


def det_by_minor(module: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """cmpad ``det_by_minor``: the determinant of the ell x ell matrix ``x[i * ell + j]``.

    Written against indexing and ``+ - *`` only, so it is the PyTorch-style, the NumPy-style and
    the scalar (micrograd) source at once; ``module`` is unused.
    """
    ell = consts["ell"]
    return det_of_minor(params[0], ell, tuple(range(ell)), tuple(range(ell)))


def _det_scalar(params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    return det_by_minor(None, params, consts)


def _make_det(ell: int) -> Case:
    # cmpad draws the entries uniformly on [0, 1].
    return Case((_rng(f"det{ell}").uniform(0.0, 1.0, ell * ell),), {"ell": ell})


# --- llsq_obj ----------------------------------------------------------------------------------

def llsq_obj_torch(torch: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """cmpad ``llsq_obj``: 0.5 * sum_j (sum_i x_i t_j^i - sign(t_j))^2, t_j evenly on [-1, 1].

    Vectorised over the points as cmpad's PyTorch version is: one ``x[i] * t^i`` per coefficient.
    """
    (x,) = params
    t, q = consts["t"], consts["q"]
    model = 0.0
    ti = torch.ones(t.shape[0], dtype=torch.float64)
    for i in range(x.shape[0]):
        model = model + x[i] * ti
        ti = ti * t
    return 0.5 * torch.square(model - q).sum()


def llsq_obj_np(np: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """NumPy-style ``llsq_obj``: the same operations as ``llsq_obj_torch``."""
    (x,) = params
    t, q = consts["t"], consts["q"]
    model = 0.0
    ti = np.ones(t.shape[0])
    for i in range(x.shape[0]):
        model = model + x[i] * ti
        ti = ti * t
    return 0.5 * np.sum(np.square(model - q))


def llsq_obj_scalar(params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """Scalar ``llsq_obj``, point by point as cmpad's C++ version (``t^i`` are constants)."""
    (x,) = params
    sumsq = 0.0
    for tj, qj in zip(consts["t"], consts["q"]):
        model = 0.0
        tij = 1.0
        for xi in x:
            model = model + xi * tij
            tij *= tj
        residual = model - qj
        sumsq = sumsq + residual * residual
    return sumsq * 0.5


def _make_llsq(n_arg: int, n_points: int) -> Case:
    t = np.linspace(-1.0, 1.0, n_points)
    q = np.sign(t)
    return Case((_rng("llsq").uniform(0.0, 1.0, n_arg),), {"t": t, "q": q})


# --- an_ode ------------------------------------------------------------------------------------

def an_ode_state(torch: Any, x: Any, steps: int) -> Any:
    """cmpad ``an_ode``'s final state: RK4 on y' = f(y), f_0 = x_0, f_i = x_i y_(i-1),
    y(0) = 0, to t = 2 in ``steps`` steps, the state rebuilt with ``torch.cat`` at every stage.
    (Its Jacobian is a benchmark of its own: ``benchmarks/trace.py``.)"""
    h = 2.0 / steps

    def f(y: Any) -> Any:
        return torch.cat([x[:1], x[1:] * y[:-1]])

    y = torch.zeros(x.shape[0], dtype=torch.float64)
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + h * k1 / 2.0)
        k3 = f(y + h * k2 / 2.0)
        k4 = f(y + h * k3)
        y = y + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return y


def an_ode_torch(torch: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """cmpad ``an_ode``: the sum of the final state (``an_ode_state``); y_(n-1)(2) alone
    would be unreachable from x in fewer than n steps."""
    return an_ode_state(torch, params[0], consts["steps"]).sum()


def an_ode_np(np: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """NumPy-style ``an_ode``: the same operations, ``concatenate`` for ``cat``."""
    (x,) = params
    steps = consts["steps"]
    h = 2.0 / steps

    def f(y: Any) -> Any:
        return np.concatenate([x[:1], x[1:] * y[:-1]])

    y = np.zeros(x.shape[0])
    for _ in range(steps):
        k1 = f(y)
        k2 = f(y + h * k1 / 2.0)
        k3 = f(y + h * k2 / 2.0)
        k4 = f(y + h * k3)
        y = y + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return np.sum(y)


def an_ode_scalar(params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """Scalar ``an_ode`` on Python lists, as cmpad's pure-Python version."""
    (x,) = params
    steps = consts["steps"]
    n = len(x)
    h = 2.0 / steps

    def f(y: list) -> list:
        return [x[0]] + [x[i] * y[i - 1] for i in range(1, n)]

    y: list = [0.0] * n
    for _ in range(steps):
        k1 = f(y)
        k2 = f([yi + h * ki / 2.0 for yi, ki in zip(y, k1)])
        k3 = f([yi + h * ki / 2.0 for yi, ki in zip(y, k2)])
        k4 = f([yi + h * ki for yi, ki in zip(y, k3)])
        y = [yi + h * (a + 2.0 * b + 2.0 * c + d) / 6.0
             for yi, a, b, c, d in zip(y, k1, k2, k3, k4)]
    return sum(y[1:], y[0])


def _make_ode(n: int, steps: int) -> Case:
    return Case((_rng("an_ode").uniform(0.0, 1.0, n),), {"steps": steps})


# --- scalar_chain ------------------------------------------------------------------------------

def scalar_chain(module: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """``n`` alternating ``* 1.0001`` and ``+ 0.5`` on a 0-d value: pure per-op overhead.

    Only arithmetic operators, so the same source serves every engine.
    """
    y = params[0]
    for _ in range(consts["n"] // 2):
        y = y * 1.0001
        y = y + 0.5
    return y


def _scalar_chain_scalar(params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    return scalar_chain(None, params, consts)


def _make_chain(n: int) -> Case:
    return Case((np.array(0.3),), {"n": n})


# --- seed_loop ---------------------------------------------------------------------------------

def seed_loop(module: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """PyTorch's tutorial vector-Jacobian product: double y until its norm reaches 1000.

    Data-dependent Python control flow on a value of the graph; the output is seeded with
    ``v = [0.1, 1.0, 0.0001]``.
    """
    (x,) = params
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y


def seed_loop_np(np: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """NumPy-style ``seed_loop``: ``np.linalg.norm`` for ``Tensor.norm``."""
    (x,) = params
    y = x * 2
    while np.linalg.norm(y) < 1000:
        y = y * 2
    return y


def _make_seed(n: int) -> Case:
    seed = np.resize(np.array([0.1, 1.0, 0.0001]), n)
    return Case((_rng("seed_loop").standard_normal(n),), {}, seed)


# --- elementwise chains ------------------------------------------------------------------------

def elementwise_chain(module: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """``n_ops`` element-wise ops cycling ``y * x``, ``y + 0.5``, ``tanh``, ``sin``; sum.

    ``y * x`` multiplies by the input, so x's gradient gathers many contributions. Only names
    that PyTorch and NumPy share, so this is the NumPy-style source too.
    """
    (x,) = params
    y = x
    for k in range(consts["n_ops"]):
        op = k % 4
        if op == 0:
            y = y * x
        elif op == 1:
            y = y + 0.5
        elif op == 2:
            y = module.tanh(y)
        else:
            y = module.sin(y)
    return module.sum(y)


def _make_elementwise(shape: tuple[int, ...], n_ops: int) -> Case:
    return Case((_rng(f"elementwise{shape}").standard_normal(shape),), {"n_ops": n_ops})


# --- mlp_step ----------------------------------------------------------------------------------

def mlp_torch(torch: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """A training step's gradient: MLP with ReLU, MSE loss, gradient w.r.t. all weights."""
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(consts["x"] @ w1 + b1)
    h = torch.relu(h @ w2 + b2)
    out = h @ w3 + b3
    return ((out - consts["target"]) ** 2).mean()


def mlp_np(np: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """NumPy-style ``mlp_step``: ``maximum(h, 0)`` for ReLU."""
    w1, b1, w2, b2, w3, b3 = params
    h = np.maximum(consts["x"] @ w1 + b1, 0.0)
    h = np.maximum(h @ w2 + b2, 0.0)
    out = h @ w3 + b3
    return np.mean((out - consts["target"]) ** 2)


def _make_mlp(widths: tuple[int, ...], batch: int) -> Case:
    rng = _rng("mlp")
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        params.append(rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in))
        params.append(rng.standard_normal(fan_out) * 0.1)
    consts = {"x": rng.standard_normal((batch, widths[0])),
              "target": rng.standard_normal((batch, widths[-1]))}
    return Case(tuple(params), consts)


# --- big_matmul --------------------------------------------------------------------------------

def big_matmul(module: Any, params: Sequence[Any], consts: Mapping[str, Any]) -> Any:
    """``sum(tanh(A @ B) @ C)``: BLAS-bound, where per-op overhead does not matter."""
    a, b, c = params
    return module.sum(module.tanh(a @ b) @ c)


def _make_matmul(n: int) -> Case:
    rng = _rng("matmul")
    return Case(tuple(rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(3)), {})


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("det_by_minor_3", "cmpad det_by_minor, 3x3: scalar indexing and + - * on 0-d",
             lambda ell: _make_det(ell), det_by_minor, det_by_minor, _det_scalar,
             {"ell": 3}, {"ell": 2}),
    Workload("det_by_minor_5", "cmpad det_by_minor, 5x5: scalar indexing and + - * on 0-d",
             lambda ell: _make_det(ell), det_by_minor, det_by_minor, _det_scalar,
             {"ell": 5}, {"ell": 3}),
    Workload("llsq_obj", "cmpad llsq_obj: 9 polynomial coefficients, 100 points on [-1, 1]",
             _make_llsq, llsq_obj_torch, llsq_obj_np, llsq_obj_scalar,
             {"n_arg": 9, "n_points": 100}, {"n_arg": 3, "n_points": 5}),
    Workload("an_ode", "cmpad an_ode: 100 parameters, 9 RK4 steps, state built with cat",
             _make_ode, an_ode_torch, an_ode_np, an_ode_scalar,
             {"n": 100, "steps": 9}, {"n": 4, "steps": 2}),
    Workload("scalar_chain", "1000 alternating * and + on a 0-d tensor",
             _make_chain, scalar_chain, scalar_chain, _scalar_chain_scalar,
             {"n": 1000}, {"n": 10}),
    Workload("seed_loop", "y = 2x; while y.norm() < 1000: y = 2y; y.backward(v), x in R^3",
             _make_seed, seed_loop, seed_loop_np, None, {"n": 3}, {"n": 3}, jit=False),
    Workload("vec16_chain", "200 ops (* + tanh sin, cycling) on a 16-vector, gradient of sum",
             _make_elementwise, elementwise_chain, elementwise_chain, None,
             {"shape": (16,), "n_ops": 200}, {"shape": (4,), "n_ops": 12}),
    Workload("mlp_step", "MLP 64-128-128-10, batch 32, ReLU, MSE loss, all weight gradients",
             _make_mlp, mlp_torch, mlp_np, None,
             {"widths": (64, 128, 128, 10), "batch": 32}, {"widths": (3, 4, 4, 2), "batch": 2}),
    Workload("big_elementwise", "20 ops (* + tanh sin, cycling) on 256x256, gradient of sum",
             _make_elementwise, elementwise_chain, elementwise_chain, None,
             {"shape": (256, 256), "n_ops": 20}, {"shape": (3, 3), "n_ops": 8}),
    Workload("big_matmul", "sum(tanh(A @ B) @ C) at 512x512, gradient w.r.t. A, B, C",
             _make_matmul, big_matmul, big_matmul, None, {"n": 512}, {"n": 4}),
]}
