"""Engines: how each autodiff library computes one workload's gradient.

``Engine.prepare`` does everything that is not part of a gradient evaluation once, outside the
timed region: converting inputs to the engine's arrays, creating the leaves, building the
gradient function (and, for ``jax-jit``, compiling it, for ``tapegrad-trace``, recording the
trace: that time is kept apart in ``Prepared.compile_s``). ``Prepared.step()`` is then exactly
one gradient evaluation (forward plus reverse sweep) and is what the runner times;
``Prepared.to_numpy`` converts its result for the check against PyTorch, outside the timed
region.

Optional engines are imported lazily: a missing library makes its engine unavailable (with the
reason printed by the runner), never an import error of this module.
"""
from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .workloads import Case, Workload


@dataclass
class Prepared:
    """One engine ready to evaluate one workload's gradient.

    ``step()`` evaluates the gradient (and waits for it: JAX dispatches asynchronously);
    ``to_numpy(step())`` lists the gradients as float64 NumPy arrays, one per parameter.
    """

    step: Callable[[], Any]
    to_numpy: Callable[[Any], list[np.ndarray]]
    compile_s: float | None = None


class Engine:
    """Base class: name, availability, which workloads it can express, how to run them."""

    name: str = ""
    description: str = ""

    def unavailable(self) -> str | None:
        """Why the engine cannot run here (a missing library), or None when it can."""
        return None

    def unsupported(self, workload: Workload) -> str | None:
        """Why this engine has no form of the workload, or None when it has one."""
        return None

    def activate(self) -> None:
        """Set process-wide state (thread counts) before this engine's timed calls."""

    def version(self) -> str:
        """The library's version, for the report."""
        return ""

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        """Build the timed gradient function for one case (see the module docstring)."""
        raise NotImplementedError


def _try_import(name: str) -> tuple[Any, str | None]:
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # ImportError, or a broken install raising something else
        return None, f"{name} is not installed ({type(exc).__name__}: {exc})"


class TorchStyle(Engine):
    """PyTorch-style engines: ``tapegrad``, and PyTorch eager with one thread or the default.

    A step clears ``.grad`` of the leaves, runs the workload's PyTorch-style function and calls
    ``backward`` (with the seed for a non-scalar output), as a training loop does.
    """

    def __init__(self, name: str, module: str, threads: int | None, description: str):
        self.name, self.module_name, self.threads = name, module, threads
        self.description = description
        self._mod: Any = None
        self._default_threads: int | None = None

    def _module(self) -> Any:
        if self._mod is None:
            mod, why = _try_import(self.module_name)
            if mod is None:
                raise RuntimeError(why)
            if self.module_name == "torch":
                _TORCH_DEFAULT_THREADS.setdefault("n", mod.get_num_threads())
            self._mod = mod
        return self._mod

    def unavailable(self) -> str | None:
        try:
            self._module()
        except RuntimeError as exc:
            return str(exc)
        return None

    def version(self) -> str:
        return str(getattr(self._module(), "__version__", ""))

    def activate(self) -> None:
        if self.module_name == "torch":
            mod = self._module()
            n = self.threads or _TORCH_DEFAULT_THREADS["n"]
            if mod.get_num_threads() != n:
                mod.set_num_threads(n)

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        T = self._module()
        self.activate()
        f64 = T.float64
        leaves = [T.tensor(p, dtype=f64, requires_grad=True) for p in case.params]
        consts = {k: T.tensor(v, dtype=f64) if isinstance(v, np.ndarray) else v
                  for k, v in case.consts.items()}
        seed = None if case.seed is None else T.tensor(case.seed, dtype=f64)
        fn = workload.torch_fn

        def step() -> list:
            for p in leaves:
                p.grad = None
            out = fn(T, leaves, consts)
            out.backward(seed)
            return [p.grad for p in leaves]

        def to_numpy(grads: list) -> list[np.ndarray]:
            return [np.array(g.detach().numpy(), dtype=np.float64) for g in grads]

        return Prepared(step, to_numpy)


_TORCH_DEFAULT_THREADS: dict[str, int] = {}


class TapegradTrace(Engine):
    """``tapegrad.trace``: the PyTorch-style function recorded once, its tape replayed in Numba.

    ``prepare`` traces the function at the case's parameters (with the default
    ``check=True``, so the function runs twice) and keeps that wall time as ``compile_s``, the
    counterpart of jax-jit's first call; a tiny function is traced first, once per process, so
    that loading the compiled replay kernels from Numba's cache is not charged to the first
    workload. A step is one compiled call: ``tr.gradient(*params)`` for a 0-d output,
    ``tr.vjp(params, seed)`` otherwise. Workloads with data-dependent branches (seed_loop)
    replay through guards: the timed inputs are the recorded ones, so the guards hold.
    """

    name = "tapegrad-trace"
    description = "tapegrad.trace of the PyTorch-style source, replayed (record time apart)"
    _warm = False

    def unavailable(self) -> str | None:
        mod, why = _try_import("tapegrad")
        if why is None and not hasattr(mod, "trace"):
            return "this tapegrad has no tapegrad.trace"
        return why

    def version(self) -> str:
        import tapegrad
        return str(getattr(tapegrad, "__version__", ""))

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        import tapegrad as T
        if not TapegradTrace._warm:  # load the replay kernels (Numba cache) outside compile_s
            warm = T.trace(lambda x: (x * x).sum(), np.ones(2))
            warm.gradient(np.ones(2))
            warm.vjp((np.ones(2),), np.ones(()))
            TapegradTrace._warm = True
        consts = {k: T.tensor(v, dtype=T.float64) if isinstance(v, np.ndarray) else v
                  for k, v in case.consts.items()}
        fn = workload.torch_fn
        params = tuple(np.array(p, dtype=np.float64) for p in case.params)
        t0 = time.perf_counter()
        tr = T.trace(lambda *ps: fn(T, list(ps), consts), *params)
        compile_s = time.perf_counter() - t0
        if case.seed is None:
            step = lambda: tr.gradient(*params)
        else:
            seed = np.array(case.seed, dtype=np.float64)
            step = lambda: tr.vjp(params, seed)
        many = len(params) > 1

        def to_numpy(grads: Any) -> list[np.ndarray]:
            gs = grads if many else (grads,)
            return [np.array(g, dtype=np.float64).reshape(p.shape) for g, p in zip(gs, params)]

        return Prepared(step, to_numpy, compile_s)


class HipsAutograd(Engine):
    """HIPS autograd: ``autograd.grad`` of the NumPy-style function over the parameter tuple."""

    name = "autograd"
    description = "HIPS autograd (NumPy-style source), eager"

    def unavailable(self) -> str | None:
        return _try_import("autograd.numpy")[1]

    def unsupported(self, workload: Workload) -> str | None:
        return None if workload.np_fn is not None else "no NumPy-style form"

    def version(self) -> str:
        from importlib.metadata import version
        return version("autograd")

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        import autograd
        import autograd.numpy as anp
        fn, consts, params = workload.np_fn, dict(case.consts), tuple(case.params)
        assert fn is not None

        def f(ps: tuple) -> Any:
            return fn(anp, ps, consts)

        if case.seed is None:
            g = autograd.grad(f)
            step = lambda: g(params)
        else:
            make_vjp, seed = autograd.make_vjp(f), case.seed
            step = lambda: make_vjp(params)[0](seed)
        return Prepared(step, lambda gs: [np.array(g, dtype=np.float64) for g in gs])


class Jax(Engine):
    """JAX on CPU in float64: eager ``jax.grad`` (op by op) or ``jax.jit(jax.grad(f))``.

    For ``jax-jit`` the first call (trace + XLA compile) is timed separately as ``compile_s``;
    workloads with data-dependent Python loops have no jit form.
    """

    def __init__(self, jit: bool):
        self.jit = jit
        self.name = "jax-jit" if jit else "jax"
        self.description = ("JAX jax.jit(jax.grad(f)), CPU" if jit
                            else "JAX eager jax.grad, CPU (op-by-op dispatch)")

    def unavailable(self) -> str | None:
        mod, why = _try_import("jax")
        if mod is not None:
            mod.config.update("jax_enable_x64", True)
        return why

    def unsupported(self, workload: Workload) -> str | None:
        if workload.np_fn is None:
            return "no NumPy-style form"
        if self.jit and not workload.jit:
            return "data-dependent Python loop: no jit form"
        return None

    def version(self) -> str:
        import jax
        return str(jax.__version__)

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        fn = workload.np_fn
        assert fn is not None
        params = tuple(jnp.asarray(p) for p in case.params)
        consts = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v
                  for k, v in case.consts.items()}

        def f(ps: tuple) -> Any:
            return fn(jnp, ps, consts)

        if case.seed is None:
            g = jax.grad(f)
        else:
            seed = jnp.asarray(case.seed)

            def g(ps: tuple) -> Any:
                return jax.vjp(f, ps)[1](seed)[0]

        compile_s = None
        if self.jit:
            g = jax.jit(g)
            t0 = time.perf_counter()
            jax.block_until_ready(g(params))
            compile_s = time.perf_counter() - t0
        step = lambda: jax.block_until_ready(g(params))
        return Prepared(step, lambda gs: [np.array(x, dtype=np.float64) for x in gs], compile_s)


class Micrograd(Engine):
    """micrograd 0.1.0: one ``Value`` per scalar, for the workloads that are scalar programs.

    Its ``backward`` sorts the graph with a recursive function, so the recursion limit is
    raised to the graph's depth.
    """

    name = "micrograd"
    description = "micrograd 0.1.0 scalar Value graph"

    def unavailable(self) -> str | None:
        return _try_import("micrograd.engine")[1]

    def unsupported(self, workload: Workload) -> str | None:
        return None if workload.scalar_fn is not None else "not a scalar program"

    def version(self) -> str:
        from importlib.metadata import version
        return version("micrograd")

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        from micrograd.engine import Value
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 50_000))
        fn = workload.scalar_fn
        assert fn is not None
        shapes = [p.shape for p in case.params]
        flat = [[Value(float(v)) for v in p.ravel()] for p in case.params]
        leaves: list[Any] = [vs[0] if p.ndim == 0 else vs for vs, p in zip(flat, case.params)]
        every = [v for vs in flat for v in vs]
        consts = {k: v.tolist() if isinstance(v, np.ndarray) else v
                  for k, v in case.consts.items()}

        def step() -> list:
            for v in every:
                v.grad = 0
            fn(leaves, consts).backward()
            return [[v.grad for v in vs] for vs in flat]

        def to_numpy(grads: Sequence) -> list[np.ndarray]:
            return [np.array(g, dtype=np.float64).reshape(s) for g, s in zip(grads, shapes)]

        return Prepared(step, to_numpy)


def all_engines() -> dict[str, Engine]:
    """Every engine, in report order (``torch`` is the baseline of the ratios)."""
    engines: list[Engine] = [
        TorchStyle("tapegrad", "tapegrad", None, "tapegrad (PyTorch-style source)"),
        TapegradTrace(),
        TorchStyle("torch", "torch", 1, "PyTorch eager, torch.set_num_threads(1)"),
        TorchStyle("torch-mt", "torch", None, "PyTorch eager, default thread count"),
        HipsAutograd(),
        Jax(jit=False),
        Jax(jit=True),
        Micrograd(),
    ]
    return {e.name: e for e in engines}
