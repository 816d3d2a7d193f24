"""``tapegrad.trace``: replays at new inputs against eager tapegrad, PyTorch and finite
differences, on every row of the op table and on the benchmark workloads; guards,
refusals, ``compile``, ``optimize``, saving and batches.

A trace is always evaluated at inputs other than the ones it was recorded at, so a value
baked into the tape shows up as a wrong number.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from op_specs import case_id, cases, inputs_for, seed_of

import tapegrad
from tapegrad import _tape as T
from tapegrad._trace import Trace
from tapegrad.bench.workloads import WORKLOADS, an_ode_state

try:
    import torch as _torch
except ImportError:  # the PyTorch comparisons are skipped, the rest runs
    _torch = None

pytestmark = [
    pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning"),
]

RTOL, ATOL = 1e-9, 1e-11


def _close(a, b, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol, err_msg=what)


def _eager_vjp(fn, arrays, v):
    """Eager tapegrad: (output, gradient of sum(output * v) per input)."""
    xs = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True) for a in arrays]
    out = fn(*xs)
    seed = tapegrad.tensor(np.broadcast_to(np.asarray(v, dtype=np.float64), out.shape).copy())
    g = tapegrad.autograd.grad(out, xs, seed, allow_unused=True, materialize_grads=True)
    return out.detach().numpy().astype(float), [t.numpy() for t in g]


def _torch_vjp(spec, arrays, v):
    xs = [_torch.tensor(a, dtype=_torch.float64, requires_grad=True) for a in arrays]
    out = spec.fn(_torch, *xs)
    g = _torch.autograd.grad(out, xs, _torch.tensor(np.asarray(v).reshape(out.shape)),
                             allow_unused=True, materialize_grads=True)
    return [t.numpy() for t in g]


# ---------------------------------------------------------------- the op table

# rows a replay cannot reproduce, refused with TraceError when traced: an index chosen by
# the values (max/min over a dim) or an output whose size depends on the values
REFUSED = ("max.method.dim", "max.method.keepdim", "max.method.unpack", "max.fn.dim",
           "max.ties.dim", "min.method.dim", "min.method.keepdim", "min.method.unpack",
           "min.fn.dim", "min.ties.dim", "index.bool_mask_data",
           # replays compute in float64: narrowing casts are refused
           "to.float32", "to.dtype_kw", "to.float16", "float.method", "type.method",
           "to.round_trip")


# a mask computed from the traced input: the output's size depends on the values
REFUSED_EXACTLY = {"masked_select.method", "masked_select.fn"}


def _refused(spec):
    return spec.name.startswith(REFUSED) or spec.name in REFUSED_EXACTLY


ROWS = [pytest.param(spec, case, id=case_id(spec, case)) for spec, case in cases()
        if spec.differentiable]


def _moved(spec, case):
    """Other inputs from the same domains (the trace was recorded at inputs_for's)."""
    return inputs_for(spec, case, case_id(spec, case) + "/elsewhere")


@pytest.mark.parametrize(("spec", "case"), ROWS)
def test_op_replayed_at_new_inputs(spec, case):
    arrays = inputs_for(spec, case)
    try:
        tr = tapegrad.trace(lambda *xs: spec.fn(tapegrad, *xs), *arrays)
    except tapegrad.TraceError:
        assert _refused(spec), spec.name
        return
    assert not _refused(spec), f"{spec.name} was expected to be refused"
    moved = _moved(spec, case)
    rng = np.random.default_rng(seed_of(case_id(spec, case) + "/v"))
    v = rng.standard_normal(tuple(tr.out_shapes[0]))
    out, grads = _eager_vjp(lambda *xs: spec.fn(tapegrad, *xs), moved, v)
    _close(tr(*moved), out, "replayed forward")
    got = tr.vjp(tuple(moved), v)
    got = got if isinstance(got, tuple) else (got,)
    for g, e in zip(got, grads):
        _close(g, e, "replayed vjp vs eager")
    if _torch is not None:
        for g, e in zip(got, _torch_vjp(spec, moved, v)):
            _close(g, e, "replayed vjp vs PyTorch", 1e-8, 1e-10)
    # forward mode against reverse mode: the Jacobian both ways, and one jvp
    jr = tr.jacobian(*moved, mode="reverse")
    jf = tr.jacobian(*moved, mode="forward")
    jr = jr if isinstance(jr, tuple) else (jr,)
    jf = jf if isinstance(jf, tuple) else (jf,)
    # where a derivative is infinite (sqrt at 0, var of one element) the modes differ in
    # 0 * inf: the reverse sweep skips zero adjoints, tangents multiply as PyTorch's do
    for a, b in zip(jr, jf):
        a, b = np.asarray(a), np.asarray(b)
        finite = np.isfinite(a) & np.isfinite(b)
        _close(b[finite], a[finite], "forward-mode Jacobian vs reverse-mode")
    t = [rng.standard_normal(a.shape) for a in moved]
    y, ty = tr.jvp(tuple(moved), tuple(t))
    if all(np.isfinite(j).all() for j in jr) and all(m.size for m in moved):
        expect = sum(np.tensordot(j, ti, axes=ti.ndim) if ti.ndim else j * ti
                     for j, ti in zip(jr, t))
        _close(ty, expect, "jvp vs J t")


def _pullback_with(tr, moved, v, kernel, dense):
    """tr's (outputs, vjp) computed by the given compiled kernel, DENSE bit or not."""
    saved = tr._kernel, tr._dense
    tr._kernel, tr._dense = kernel, dense
    try:
        return tr._one_point(moved, T.PULLBACK, np.asarray(v, dtype=float).reshape(1, -1))
    finally:
        tr._kernel, tr._dense = saved


def _pushforward_with(tr, moved, t, kernel):
    """tr's output tangent for the input tangent t, computed by the given kernel."""
    saved = tr._kernel
    tr._kernel = kernel
    try:
        return tr._one_point(moved, T.PUSHFORWARD, t.reshape(1, -1))[1]
    finally:
        tr._kernel = saved


@pytest.mark.parametrize(("spec", "case"), [p for p in ROWS if not _refused(p.values[0])])
def test_leaf_kernels_agree_with_the_general_sweep(spec, case):
    """A program of LEAN_KINDS replays and sweeps in leaf kernels (trace_lean; the dense
    sweep for one-element programs; trace_packed for gradient()).  Each must give the very
    numbers trace_run gives, which runs the general ``sweep`` (forward mode: the two share
    the leaf tangent, so this checks the leaf driver)."""
    arrays = inputs_for(spec, case)
    tr = tapegrad.trace(lambda *xs: spec.fn(tapegrad, *xs), *arrays)
    if not tr._lean:
        return
    moved = _moved(spec, case)
    v = np.random.default_rng(seed_of(case_id(spec, case) + "/lean")).standard_normal(
        tuple(tr.out_shapes[0]))
    y0, g0 = _pullback_with(tr, moved, v, T.trace_run, 0)
    ways = [(T.trace_lean, 0)] + ([(T.trace_lean, T.DENSE)] if tr._dense else [])
    for kernel, dense in ways:
        y, g = _pullback_with(tr, moved, v, kernel, dense)
        np.testing.assert_array_equal(y, y0, err_msg=f"values, dense={dense}")
        np.testing.assert_array_equal(g, g0, err_msg=f"vjp, dense={dense}")
    t = np.random.default_rng(seed_of(case_id(spec, case) + "/tangent")).standard_normal(
        tr._nin)
    tangents = [_pushforward_with(tr, moved, t, kernel) for kernel in (T.trace_run,
                                                                         T.trace_lean)]
    np.testing.assert_array_equal(tangents[1], tangents[0], err_msg="jvp")
    if len(moved) == 1 and tr._nout == 1:  # gradient()'s packed call
        _, g1 = _pullback_with(tr, moved, np.ones(1), T.trace_run, 0)
        got = tr.gradient(moved[0])
        np.testing.assert_array_equal(np.asarray(got).reshape(-1), g1[0])


def test_leaf_kernels_cover_the_workloads():
    """The benchmark workloads run in the leaf kernels (the test above compares them)."""
    kinds = {}
    for name in ("det_by_minor_3", "llsq_obj", "an_ode", "scalar_chain"):
        case = WORKLOADS[name].case()
        consts = {k: tapegrad.tensor(c) if isinstance(c, np.ndarray) else c
                  for k, c in case.consts.items()}
        tr = tapegrad.trace(lambda *ps, n=name, k=consts: WORKLOADS[n].torch_fn(
            tapegrad, list(ps), k), *case.params)
        kinds[name] = (tr._lean, bool(tr._dense))
    assert kinds == {"det_by_minor_3": (True, True), "llsq_obj": (True, False),
                     "an_ode": (True, False), "scalar_chain": (True, True)}


GRADCHECK_ROWS = [p for p in ROWS if p.values[0].gradcheck and not _refused(p.values[0])]


@pytest.mark.parametrize(("spec", "case"), GRADCHECK_ROWS[::3])
def test_op_replay_against_finite_differences(spec, case):
    arrays = inputs_for(spec, case)
    rng = np.random.default_rng(seed_of(case_id(spec, case) + "/w"))
    shape = spec.fn(tapegrad, *[tapegrad.tensor(a) for a in arrays]).shape
    w = rng.standard_normal(tuple(shape))

    def f(*xs):
        return (spec.fn(tapegrad, *xs) * tapegrad.tensor(w)).sum()
    tr = tapegrad.trace(f, *arrays)
    moved = _moved(spec, case)
    g = tr.gradient(*moved)
    g = g if isinstance(g, tuple) else (g,)
    h = 1e-6
    for i, x in enumerate(moved):
        fd = np.zeros(x.shape)
        for k in range(x.size):
            up = [m.copy() for m in moved]
            dn = [m.copy() for m in moved]
            up[i].reshape(-1)[k] += h
            dn[i].reshape(-1)[k] -= h
            fd.reshape(-1)[k] = (tr(*up) - tr(*dn)) / (2 * h)
        _close(g[i], fd, "replayed gradient vs central differences", 1e-5, 1e-6)


# ---------------------------------------------------------------- the benchmark workloads

TRACEABLE = ["det_by_minor_3", "det_by_minor_5", "llsq_obj", "an_ode", "scalar_chain",
             "seed_loop", "vec16_chain", "mlp_step", "big_elementwise", "big_matmul"]


def _workload_fn(w, case):
    consts = {k: tapegrad.tensor(v) if isinstance(v, np.ndarray) else v
              for k, v in case.consts.items()}
    return lambda *ps: w.torch_fn(tapegrad, list(ps), consts)


@pytest.mark.parametrize("name", TRACEABLE)
def test_workload_trace_matches_eager_and_torch(name):
    w = WORKLOADS[name]
    case = w.case(tiny=True)
    fn = _workload_fn(w, case)
    tr = tapegrad.trace(fn, *case.params)
    rng = np.random.default_rng(seed_of(name))
    # new inputs; seed_loop's branches depend on the norm, so keep it on the same side
    moved = [p * (1.0 + 0.01 * rng.standard_normal(p.shape)) for p in case.params]
    seed = case.seed if case.seed is not None else 1.0
    out, grads = _eager_vjp(fn, moved, seed)
    _close(tr(*moved), out, "forward")
    got = tr.vjp(tuple(moved), seed)
    got = got if isinstance(got, tuple) else (got,)
    for g, e in zip(got, grads):
        _close(g, e, f"{name}: trace vs eager")
    if _torch is not None:
        tconsts = {k: _torch.tensor(v) if isinstance(v, np.ndarray) else v
                   for k, v in case.consts.items()}
        ps = [_torch.tensor(p, requires_grad=True) for p in moved]
        o = w.torch_fn(_torch, ps, tconsts)
        o.backward(None if case.seed is None else _torch.tensor(case.seed))
        for g, p in zip(got, ps):
            _close(g, p.grad.numpy(), f"{name}: trace vs PyTorch", 1e-8, 1e-10)


def test_an_ode_jacobian_against_torch():
    w = WORKLOADS["an_ode"]
    case = w.case(tiny=True)
    consts = dict(case.consts)
    x = case.params[0]
    tr = tapegrad.trace(lambda t: an_ode_state(tapegrad, t, consts["steps"]), x)
    x2 = x + 0.1
    jr = tr.jacobian(x2, mode="reverse")
    jf = tr.jacobian(x2, mode="forward")
    _close(jf, jr, "an_ode Jacobian both ways")
    if _torch is not None:
        jt = _torch.autograd.functional.jacobian(
            lambda t: an_ode_state(_torch, t, consts["steps"]), _torch.tensor(x2))
        _close(jr, jt.numpy(), "an_ode Jacobian vs torch.autograd.functional")




# ---------------------------------------------------------------- guards and compile

def _branchy(x):
    if x.sum() > 0:
        return (x * x).sum()
    return x.sin().sum()


def test_guard_fails_on_the_other_branch_naming_the_line():
    x = np.array([1.0, 2.0])
    tr = tapegrad.trace(_branchy, x)
    assert len(tr.guards) == 1 and "if x.sum() > 0:" in tr.guards[0]
    _close(tr.gradient(x + 1), 2 * (x + 1), "same branch")
    with pytest.raises(tapegrad.TraceGuardError, match=r"test_trace\.py:\d+: if x.sum\(\) > 0"):
        tr.gradient(-x)


def test_value_guards_item_and_float():
    def f(x):
        s = float(x.sum())  # Python continues with this number: only this x replays
        return x * s
    x = np.array([1.0, 2.0])
    tr = tapegrad.trace(f, x)
    _close(tr(x), x * 3.0, "same inputs")
    with pytest.raises(tapegrad.TraceGuardError):
        tr(x + 1)


def test_compile_retraces_per_branch_and_bounds_its_cache():
    f = tapegrad.compile(_branchy, max_traces=2)
    x = np.array([1.0, 2.0])
    _close(f.gradient(x), 2 * x, "positive branch")
    _close(f.gradient(-x), np.cos(-x), "negative branch")
    _close(f.gradient(x * 3), 6 * x, "cached positive trace")
    assert len(f.traces) == 2 and f.retraces == 1
    f.gradient(np.array([1.0, 2.0, 3.0]))  # a new shape: a third trace, the oldest goes
    assert len(f.traces) == 2
    assert "2 traces cached (at most 2)" in repr(f)
    _close(f(x), (x * x).sum(), "call")


def test_seed_loop_guards_follow_the_loop():
    w = WORKLOADS["seed_loop"]
    case = w.case()
    tr = tapegrad.trace(_workload_fn(w, case), *case.params)
    assert len(tr.guards) >= 2
    with pytest.raises(tapegrad.TraceGuardError, match="while y.norm"):
        tr(case.params[0] * 100)


def test_masks_from_comparisons_are_replayed():
    def f(x):
        return (tapegrad.where(x > 0, x, 0.1 * x).sum() + (x * (x > 1).float()).sum()
                + x.clamp(-0.5, 0.5).sum() + x.abs().max() + x.masked_fill(x < -1, 2.0).sum()
                + ((x > 0) & (x < 1)).double().sum() * x.sum())
    x = np.array([0.5, -1.5, 2.0, -0.2])
    tr = tapegrad.trace(f, x)
    for pt in (x, -x, 3 * x, x + 0.7):
        _, (g,) = _eager_vjp(f, [pt], 1.0)
        _close(tr.gradient(pt), g, f"at {pt}")


@pytest.mark.parametrize(("what", "fn"), [
    ("argmax", lambda x: x[x.argmax()]),
    ("max(dim)", lambda x: x.max(0).values),
    ("random", lambda x: x * tapegrad.rand(3)),
    ("detach", lambda x: x * x.detach()),
    ("no_grad", lambda x: _under_no_grad(x)),
    ("numpy", lambda x: x * float(np.asarray(x).sum())),
    ("boolean index", lambda x: x[x > 0].sum()),
    ("masked_select", lambda x: x.masked_select(x > 0).sum()),
    ("tolist", lambda x: x * sum(x.tolist())),
    ("int cast", lambda x: x * x.long()),
    ("hook", lambda x: _hooked(x)),
])
def test_refused_at_trace_time(what, fn):
    with pytest.raises(tapegrad.TraceError, match="cannot replay"):
        tapegrad.trace(fn, np.array([0.5, -1.0, 2.0]))


def _under_no_grad(x):
    with tapegrad.no_grad():
        return x * 2


def _hooked(x):
    y = x * 2
    y.register_hook(lambda g: g)
    return y.sum()


def test_custom_function_refused():
    class Square(tapegrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g
    with pytest.raises(tapegrad.TraceError, match="Function"):
        tapegrad.trace(lambda x: Square.apply(x).sum(), np.array([1.0, 2.0]))


def test_second_recording_catches_values_copied_off_the_tape():
    # the private array read copies x's values into a constant: no guard or refusal sees
    # it, the second recording at other inputs does
    with pytest.raises(tapegrad.TraceError, match="depends on the input values"):
        tapegrad.trace(lambda x: x * tapegrad.tensor(x._a.copy()), np.array([1.0, 2.0]))
    # without the check, the trace is made (and would be wrong elsewhere)
    tapegrad.trace(lambda x: x * tapegrad.tensor(x._a.copy()), np.array([1.0, 2.0]),
                   check=False)


def test_closure_parameters_are_constants_of_the_trace():
    w = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    tr = tapegrad.trace(lambda x: (w * x).sum(), np.array([3.0, 4.0]))
    _close(tr.gradient(np.array([5.0, 6.0])), [1.0, 2.0], "gradient w.r.t. x only")
    assert w.grad is None


def test_bad_arguments():
    tr = tapegrad.trace(lambda x, y: (x * y).sum(), np.ones(3), 2.0)
    with pytest.raises(ValueError, match="shape"):
        tr(np.ones(4), 2.0)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        tr(np.ones(3))
    g = tr.gradient(np.arange(3.0), 2.0)
    assert isinstance(g, tuple) and isinstance(g[1], float)
    _close(g[1], 3.0, "gradient w.r.t. the 0-d input")
    with pytest.raises(RuntimeError, match="scalar outputs"):
        tapegrad.trace(lambda x: x * 2, np.ones(2)).gradient(np.ones(2))
    with pytest.raises(tapegrad.TraceError, match="return a tensor"):
        tapegrad.trace(lambda x: 1.0, np.ones(2))


def test_gradient_fast_path_takes_every_layout():
    """gradient() reads a contiguous 1-d float64 argument in place and copies any other
    layout first: read-only, unaligned, strided, n-d and list arguments all give the
    gradient the general path (vjp) gives, and a later call never sees an earlier
    argument.  Wrong shapes and dtypes are refused or converted as by vjp."""
    def f(x):
        return (x * x * x).sum() + x.reshape(-1)[0]

    rng = np.random.default_rng(7)
    x0 = rng.standard_normal(6)
    for shape in ((6,), (2, 3)):
        tr = tapegrad.trace(f, x0.reshape(shape))
        assert "gradient" in vars(tr)  # the fast path is set up for this trace
        big = rng.standard_normal(12)
        readonly = rng.standard_normal(6).reshape(shape)
        readonly.flags.writeable = False
        raw = np.zeros(6 * 8 + 1, dtype=np.uint8)
        unaligned = np.frombuffer(raw.data, dtype=np.float64, count=6, offset=1)
        assert not unaligned.flags.aligned
        unaligned[...] = rng.standard_normal(6)
        for x in (x0.reshape(shape), readonly, unaligned.reshape(shape),
                  big[::2].reshape(shape), np.asfortranarray(x0.reshape(shape)), -x0):
            x = x.reshape(shape)
            want = tr.vjp((np.array(x),), np.ones(()))
            expect = 3 * np.ascontiguousarray(x) ** 2
            expect.reshape(-1)[0] += 1.0
            got = tr.gradient(x)
            assert got.shape == shape and got.flags.writeable
            np.testing.assert_array_equal(got, want)
            _close(got, expect, "the gradient of sum(x**3) + x[0]")
            again = tr.gradient(x0.reshape(shape))
            assert not np.shares_memory(got, again)
            _close(again, 3 * x0.reshape(shape) ** 2 + np.eye(1, 6).reshape(shape),
                   "the next call")
        _close(tr.gradient(x0.reshape(shape).tolist()), 3 * x0.reshape(shape) ** 2
               + np.eye(1, 6).reshape(shape), "a nested list")
        with pytest.raises(ValueError, match="shape"):
            tr.gradient(np.ones(7))
        _close(tr.gradient(x0.reshape(shape).astype(np.float32)),
               3 * x0.reshape(shape).astype(np.float32).astype(np.float64) ** 2
               + np.eye(1, 6).reshape(shape), "float32 converted")
    # a 0-d argument, as an array or a float, gives a float on either path
    tr = tapegrad.trace(lambda x: x * x * 3.0, np.array(2.0))
    for x in (np.array(2.0), 2.0):
        got = tr.gradient(x)
        assert got.__class__ is float and got == Trace.gradient(tr, x) == 12.0


# ---------------------------------------------------------------- optimize, save, batches

def _redundant(x, y):
    dead = (x * y).exp()  # noqa: F841  (never used)
    a = (x * y).sin()
    b = (x * y).sin()  # the same subexpression
    c = tapegrad.tensor([1.0, 2.0, 3.0]) * 2.0 + 1.0  # constants only
    return (a * b + c * x).sum() + (y * 0.0 + 1.0).sum()


def test_optimize_removes_records_and_keeps_results():
    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.0, -1.0, 2.0])
    tr = tapegrad.trace(_redundant, x, y, optimize=False)
    before = tr.num_records
    g0 = tr.gradient(x + 1, y - 1)
    v0 = tr(x + 1, y - 1)
    removed = tr.optimize()
    assert removed >= 4 and tr.num_records == before - removed
    assert tr.records_removed == removed and tr.optimize() == 0
    _close(tr(x + 1, y - 1), v0, "value after optimize")
    for a, b in zip(tr.gradient(x + 1, y - 1), g0):
        _close(a, b, "gradient after optimize")
    _close(tr.jacobian(x, y, mode="forward")[0], tr.jacobian(x, y)[0], "jacobian after")


def _affine(x):
    y = x
    for k in range(6):
        y = y * (1.0 + 0.1 * k)
        y = y + 0.5
        y = y - 0.25  # SUBC: not fused
    return (y * y).sum() + (x * 3.0 + 1.0).sum()


def _kept_product(x):
    p = x * 2.0  # also an output: stays a record
    return p + 1.0, p


@pytest.mark.parametrize("x0", [np.array(0.3), np.array([0.2, -1.1, 3.0])])
def test_multiply_add_fusion_is_exact(x0):
    """optimize() turns ``x * c`` with one consumer ``+ d`` into one record: replayed values,
    gradients and tangents equal the unfused trace's bit for bit."""
    tr = tapegrad.trace(_affine, x0)
    raw = tapegrad.trace(_affine, x0, optimize=False)
    names = [T.NAMES[o] for o in tr._icols[0]]
    assert names.count("muladd") == 7 and tr.num_records == raw.num_records - 7
    for x in (x0 * 1.7, x0 - 0.9):
        assert tr(x) == raw(x)
        np.testing.assert_array_equal(tr.gradient(x), raw.gradient(x))
        t = np.ones_like(x) * 0.3
        np.testing.assert_array_equal(tr.jvp((x,), (t,))[1], raw.jvp((x,), (t,))[1])
    if _torch is not None:
        xt = _torch.tensor(x0 * 1.7, requires_grad=True)
        _torch_out = _affine(xt)
        _torch_out.backward()
        _close(tr.gradient(x0 * 1.7), xt.grad.numpy(), "fused gradient vs PyTorch")


def test_multiply_add_fusion_keeps_a_product_that_is_also_an_output():
    x = np.array([0.5, 2.0])
    tr = tapegrad.trace(_kept_product, x)
    assert "muladd" not in [T.NAMES[o] for o in tr._icols[0]]
    y, p = tr(x * 3)
    np.testing.assert_array_equal(p, x * 3 * 2.0)
    np.testing.assert_array_equal(y, x * 3 * 2.0 + 1.0)


_T = np.linspace(-1.0, 1.0, 7)


def _polynomial(x):
    """llsq_obj's shape: z + x[i] * t, in every operand order, and one product kept.  No
    two subexpressions are equal: merging them changes the order of sums, which is the
    common-subexpression pass's doing, not the fusion's."""
    t = tapegrad.tensor(_T)
    z = x[0] * t  # no sum to fuse into
    z = z + x[1] * t
    z = (t * x[2]) + z
    z = (x[3] * t) + z
    kept = x[4] * t
    z = z + kept + kept  # a product used twice stays
    m = tapegrad.tensor(np.ones((2, 7)))
    w = m + x[5] * tapegrad.tensor(np.ones((2, 7)))  # a 2-d broadcast is not fused
    return (z * z).sum() + w.sum()


def test_axpy_fusion_is_exact():
    """optimize() turns ``z + broadcast(s) * v`` into one AXPYS record: values, gradients
    and tangents equal the unfused trace's bit for bit, and the leaf kernels equal the
    general sweep on it."""
    x0 = np.array([0.3, -1.2, 0.8, 2.0, -0.4, 1.1])
    tr = tapegrad.trace(_polynomial, x0)
    raw = tapegrad.trace(_polynomial, x0, optimize=False)
    # the three sums of scaled arrays chain into one AXPYN record
    assert [T.NAMES[o] for o in tr._icols[0]].count("axpy") == 1
    assert list(tr._icols[0]).count(T.AXPYN) == 1
    for x in (x0 * 1.7, x0 - 0.9):
        assert tr(x) == raw(x)
        np.testing.assert_array_equal(tr.gradient(x), raw.gradient(x))
        t = np.array([0.3, -0.1, 0.2, 1.0, 0.5, -0.7])
        np.testing.assert_array_equal(tr.jvp((x,), (t,))[1], raw.jvp((x,), (t,))[1])
        y0, g0 = _pullback_with(tr, (x,), np.ones(1), T.trace_run, 0)
        y1, g1 = _pullback_with(tr, (x,), np.ones(1), T.trace_lean, 0)
        np.testing.assert_array_equal(g1, g0)
        np.testing.assert_array_equal(_pushforward_with(tr, (x,), t, T.trace_run),
                                      _pushforward_with(tr, (x,), t, T.trace_lean))
    if _torch is not None:
        xt = _torch.tensor(x0 * 1.7, requires_grad=True)
        tt = _torch.tensor(_T)
        z = xt[0] * tt + xt[1] * tt
        z = (tt * xt[2]) + z
        z = (xt[3] * tt) + z
        z = z + xt[4] * tt + xt[4] * tt
        w = _torch.ones(2, 7, dtype=_torch.float64) + xt[5] * _torch.ones(2, 7,
                                                                        dtype=_torch.float64)
        ((z * z).sum() + w.sum()).backward()
        _close(tr.gradient(x0 * 1.7), xt.grad.numpy(), "fused gradient vs PyTorch")


def _rk4(x, w):
    """Two RK4 steps of y' = y * w: sums of arrays times numbers, divided or not."""
    h = 0.3
    y = x
    for _ in range(2):
        k1 = y * w
        k2 = (y + h * k1 / 2.0) * w
        k3 = (y + h * k2 / 2.0) * w
        k4 = (y + h * k3) * w
        y = y + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return y


def test_axpy_by_numbers_is_exact():
    """``z + v * c / d`` becomes one AXPYC record: values, vjps and tangents equal the
    unfused trace's bit for bit; the leaf kernels equal the general sweep."""
    x0, w0 = np.linspace(0.5, 1.5, 5), np.linspace(-1.0, 1.0, 5)
    tr = tapegrad.trace(_rk4, x0, w0)
    raw = tapegrad.trace(_rk4, x0, w0, optimize=False)
    assert [T.NAMES[o] for o in tr._icols[0]].count("axpy") == 12
    v = np.linspace(-1.0, 2.0, 5)
    for x, w in ((x0 * 1.3, w0 - 0.2), (x0 - 0.4, w0 * 2.0)):
        np.testing.assert_array_equal(tr(x, w), raw(x, w))
        for a, b in zip(tr.vjp((x, w), v), raw.vjp((x, w), v)):
            np.testing.assert_array_equal(a, b)
        t = (np.full(5, 0.3), np.linspace(1.0, -1.0, 5))
        np.testing.assert_array_equal(tr.jvp((x, w), t)[1], raw.jvp((x, w), t)[1])
        y0, g0 = _pullback_with(tr, (x, w), v, T.trace_run, 0)
        y1, g1 = _pullback_with(tr, (x, w), v, T.trace_lean, 0)
        np.testing.assert_array_equal(g1, g0)
    if _torch is not None:
        xt = _torch.tensor(x0, requires_grad=True)
        wt = _torch.tensor(w0, requires_grad=True)
        gx, gw = _torch.autograd.grad(_rk4(xt, wt), (xt, wt), _torch.tensor(v))
        got = tr.vjp((x0, w0), v)
        _close(got[0], gx.numpy(), "fused vjp vs PyTorch")
        _close(got[1], gw.numpy(), "fused vjp vs PyTorch")


def _axpy_chain(x, w):
    """Chains of ``z + s * v`` (each s a different element: a broadcast shared by two
    products is not fused): v computed from the inputs (so it gets adjoints and tangents
    too) or an input, v1 and v2 in several terms, s computed, a link used twice (it ends
    its chain and is the next chain's z and one of its v), a chain whose z is a constant
    and whose links a record reading one of its operands keeps apart."""
    s = x[0:2].sum()
    v1, v2 = w.sin(), w * w
    z = w + x[2] * v1
    z = z + s * v2
    z = z + x[3] * w
    kept = z + x[4] * v2
    y = kept + x[5] * v1
    y = y + x[6] * kept
    lib = tapegrad if isinstance(w, tapegrad.Tensor) else _torch
    c = lib.tensor(np.linspace(0.0, 1.0, 4))
    q = c + x[7] * v1
    r = v1 * 3.0  # reads v1 between two links: they stay apart (v1's adjoint order)
    q = q + x[1] * v2
    return (y * kept).sum() + (q * q).sum() + (r * q).sum()


def test_axpy_chains_are_exact():
    """optimize() turns chains of AXPYS records into AXPYN records: values, vjps and
    tangents equal the unfused trace's bit for bit, the leaf kernels equal the general
    sweep, re-optimizing changes nothing, and the gradient matches PyTorch."""
    x0, w0 = np.array([0.3, -1.2, 0.8, 2.0, -0.4, 1.1, 0.6, -0.9]), np.linspace(-1.0, 1.0, 4)
    tr = tapegrad.trace(_axpy_chain, x0, w0)
    raw = tapegrad.trace(_axpy_chain, x0, w0, optimize=False)
    ops = list(tr._icols[0])
    assert ops.count(T.AXPYN) == 2 and ops.count(T.AXPYS) == 2, [T.NAMES[o] for o in ops]
    for x, w in ((x0 * 1.7, w0 - 0.2), (x0 - 0.9, w0 * 2.0)):
        assert tr(x, w) == raw(x, w)
        for a, b in zip(tr.gradient(x, w), raw.gradient(x, w)):
            np.testing.assert_array_equal(a, b)
        t = (np.linspace(-1.0, 1.0, 8), np.array([0.5, -0.7, 0.1, 0.4]))
        np.testing.assert_array_equal(tr.jvp((x, w), t)[1], raw.jvp((x, w), t)[1])
        y0, g0 = _pullback_with(tr, (x, w), np.ones(1), T.trace_run, 0)
        y1, g1 = _pullback_with(tr, (x, w), np.ones(1), T.trace_lean, 0)
        np.testing.assert_array_equal(g1, g0)
        flat = np.concatenate(t)
        np.testing.assert_array_equal(_pushforward_with(tr, (x, w), flat, T.trace_run),
                                      _pushforward_with(tr, (x, w), flat, T.trace_lean))
    n = tr.num_records
    assert tr.optimize() == 0 and tr.num_records == n
    for a, b in zip(tr.gradient(x0, w0), raw.gradient(x0, w0)):
        np.testing.assert_array_equal(a, b, err_msg="re-optimized")
    if _torch is not None:
        xt = _torch.tensor(x0, requires_grad=True)
        wt = _torch.tensor(w0, requires_grad=True)
        gx, gw = _torch.autograd.grad(_axpy_chain(xt, wt), (xt, wt))
        got = tr.gradient(x0, w0)
        _close(got[0], gx.numpy(), "AXPYN gradient vs PyTorch")
        _close(got[1], gw.numpy(), "AXPYN gradient vs PyTorch")


@pytest.mark.parametrize("name", ["det_by_minor_3", "an_ode", "seed_loop", "mlp_step"])
def test_optimize_on_workloads(name):
    w = WORKLOADS[name]
    case = w.case(tiny=True)
    tr = tapegrad.trace(_workload_fn(w, case), *case.params, optimize=False)
    seed = case.seed if case.seed is not None else 1.0
    moved = [p * 1.001 for p in case.params]
    before = tr.vjp(tuple(moved), seed)
    tr.optimize()
    after = tr.vjp(tuple(moved), seed)
    for a, b in zip(before if isinstance(before, tuple) else (before,),
                    after if isinstance(after, tuple) else (after,)):
        _close(b, a, "vjp after optimize", 1e-12, 1e-14)


def test_save_load_and_pickle_round_trip(tmp_path):
    x = np.array([0.5, -1.5, 2.0])
    tr = tapegrad.trace(_branchy, x)
    path = tmp_path / "branchy.npz"
    tr.save(path)
    loaded = tapegrad.load_trace(path)
    unpickled = pickle.loads(pickle.dumps(tr))
    pt = x * 1.3
    for other in (loaded, unpickled):
        assert other.num_records == tr.num_records
        assert np.array_equal(other.gradient(pt), tr.gradient(pt))
        assert other(pt) == tr(pt)
        with pytest.raises(tapegrad.TraceGuardError, match="if x.sum"):
            other(-x)


def test_gradient_batch_matches_points_and_threads():
    w = WORKLOADS["det_by_minor_3"]
    case = w.case()
    tr = tapegrad.trace(_workload_fn(w, case), *case.params)
    X = np.random.default_rng(0).standard_normal((50,) + case.params[0].shape)
    one = tr.gradient_batch(X, threads=1)
    two = tr.gradient_batch(X, threads=2)
    assert np.array_equal(one, two)
    for k in (0, 17, 49):
        _close(one[k], tr.gradient(X[k]), f"point {k}")
    J = tr.jacobian_batch(X[:5])
    _close(J[:, ...], one[:5], "a scalar output's Jacobian is its gradient")


def test_gradient_batch_reports_guard_failures():
    tr = tapegrad.trace(_branchy, np.array([1.0, 2.0]))
    X = np.array([[1.0, 1.0], [2.0, 3.0], [-5.0, 1.0]])
    with pytest.raises(tapegrad.TraceGuardError, match="point 2"):
        tr.gradient_batch(X)


def test_trace_leaves_the_eager_engine_alone():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    tapegrad.trace(lambda t: (t * 3).sum(), np.ones(2))
    y.backward()
    _close(x.grad.numpy(), [2.0, 4.0], "eager backward after a trace")
    assert tapegrad.is_grad_enabled()


# ---------------------------------------------------------------- second order

# (the gradient of a norm is not differentiable at the origin: no finite differences there)
HESSIAN_ROWS = [p for p in GRADCHECK_ROWS[1::4] if "zero" not in p.values[0].domains()]


@pytest.mark.parametrize(("spec", "case"), HESSIAN_ROWS)
def test_op_hessian_replayed(spec, case):
    """Trace.hessian (the Jacobian of a replayed trace of the gradient program) against
    central differences of the replayed gradient and against PyTorch."""
    arrays = inputs_for(spec, case)
    rng = np.random.default_rng(seed_of(case_id(spec, case) + "/h"))
    shape = spec.fn(tapegrad, *[tapegrad.tensor(a) for a in arrays]).shape
    w = rng.standard_normal(tuple(shape))

    def f(lib, *xs):
        return (spec.fn(lib, *xs) * lib.tensor(w)).sum()
    tr = tapegrad.trace(lambda *xs: f(tapegrad, *xs), *arrays)
    moved = _moved(spec, case)
    if not all(m.size for m in moved):
        pytest.skip("an empty input: no second derivatives")
    H = tr.hessian(*moved)
    H = H if isinstance(H, tuple) else ((H,),)
    h = 1e-6
    for j, x in enumerate(moved):
        for k in range(x.size):
            up = [m.copy() for m in moved]
            dn = [m.copy() for m in moved]
            up[j].reshape(-1)[k] += h
            dn[j].reshape(-1)[k] -= h
            gu, gd = tr.gradient(*up), tr.gradient(*dn)
            gu = gu if isinstance(gu, tuple) else (gu,)
            gd = gd if isinstance(gd, tuple) else (gd,)
            for i in range(len(moved)):
                col = (np.asarray(gu[i]) - np.asarray(gd[i])) / (2 * h)
                got = np.asarray(H[i][j]).reshape(np.shape(col) + (-1,))[..., k]
                _close(got, col, f"d2f/dx{i}dx{j}[{k}] vs differences", 1e-5, 1e-6)
    if _torch is not None and all(m.size for m in moved):
        ht = _torch.autograd.functional.hessian(
            lambda *ts: f(_torch, *ts), tuple(_torch.tensor(m) for m in moved))
        for i in range(len(moved)):
            for j in range(len(moved)):
                _close(H[i][j], ht[i][j].numpy(), "hessian vs PyTorch", 1e-8, 1e-10)


@pytest.mark.parametrize("name", ["det_by_minor_3", "llsq_obj", "an_ode", "scalar_chain",
                                  "vec16_chain", "mlp_step"])
def test_workload_trace_methods_against_torch_functional(name):
    """Every trace method on a workload against torch.autograd.functional / torch.func."""
    if _torch is None:
        pytest.skip("PyTorch is not installed")
    w = WORKLOADS[name]
    case = w.case(tiny=True)
    fn = _workload_fn(w, case)
    tr = tapegrad.trace(fn, *case.params)
    tconsts = {k: _torch.tensor(v) if isinstance(v, np.ndarray) else v
               for k, v in case.consts.items()}

    def tfn(*ps):
        return w.torch_fn(_torch, list(ps), tconsts)
    moved = tuple(p * 1.01 for p in case.params)
    tps = tuple(_torch.tensor(p) for p in moved)
    many = len(moved) > 1

    def per_input(x):
        return x if many else (x,)
    val, grads = tr.value_and_grad(*moved)
    _close(val, tfn(*tps).item(), "value")
    jt = _torch.autograd.functional.jacobian(tfn, tps)
    for a, b in zip(per_input(tr.jacobian(*moved)), jt):
        _close(a, b.numpy(), "jacobian")
    for a, b in zip(per_input(grads), jt):
        _close(a, b.numpy(), "value_and_grad's gradient")
    tangents = tuple(np.random.default_rng(1).standard_normal(p.shape) for p in moved)
    _, ty = tr.jvp(moved, tangents)
    _, tt = _torch.func.jvp(tfn, tps, tuple(_torch.tensor(t) for t in tangents))
    _close(ty, tt.numpy(), "jvp")
    if sum(p.size for p in moved) <= 40:
        ht = _torch.autograd.functional.hessian(tfn, tps)
        H = tr.hessian(*moved)
        H = H if many else ((H,),)  # torch nests per input pair for tuple inputs already
        for i in range(len(moved)):
            for j in range(len(moved)):
                _close(H[i][j], ht[i][j].numpy(), f"hessian block {i},{j}", 1e-8, 1e-10)


def test_hessian_survives_save_and_load(tmp_path):
    def f(x):
        return (x.sin() * x).sum() + x.prod()
    x = np.array([0.3, -0.7, 1.1])
    tr = tapegrad.trace(f, x)
    h = tr.hessian(x * 2)
    tr.save(tmp_path / "f.npz")
    loaded = tapegrad.load_trace(tmp_path / "f.npz")
    assert np.array_equal(loaded.hessian(x * 2), h)
    with pytest.raises(RuntimeError, match="needs the traced function"):
        _fresh_hessian(tmp_path, x)


def _fresh_hessian(tmp_path, x):
    tr = tapegrad.trace(lambda x: (x * x).sum(), x)
    tr.save(tmp_path / "g.npz")
    return tapegrad.load_trace(tmp_path / "g.npz").hessian(x)
