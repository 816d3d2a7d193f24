"""tapegrad.func and tapegrad.autograd.functional against torch.func / torch.autograd.functional
(skipped without PyTorch) and against central finite differences (always).

Tests named ``test_so_*`` are second order or forward mode: they need
``autograd.grad(create_graph=True)``.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
import tapegrad.autograd.functional as taf
import tapegrad.func as tf

try:
    import torch
    import torch.autograd.functional as torch_af
    import torch.func as torch_func
except ImportError:  # pragma: no cover
    torch = torch_af = torch_func = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

RNG = np.random.default_rng(1234)


def arr(*shape):
    return RNG.standard_normal(shape)


# --------------------------------------------------------------------------------------------
# helpers


def T(lib, a):
    return lib.tensor(np.asarray(a, dtype=np.float64), dtype=lib.float64)


def to_lib(lib, tree):
    if isinstance(tree, tuple):
        return tuple(to_lib(lib, x) for x in tree)
    if isinstance(tree, list):
        return [to_lib(lib, x) for x in tree]
    if isinstance(tree, dict):
        return {k: to_lib(lib, v) for k, v in tree.items()}
    if isinstance(tree, np.ndarray):
        return T(lib, tree)
    return tree


def is_tensor(x):
    return isinstance(x, tapegrad.Tensor) or (torch is not None and isinstance(x, torch.Tensor))


def tree_np(tree):
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_np(x) for x in tree)
    if isinstance(tree, dict):
        return {k: tree_np(v) for k, v in tree.items()}
    if is_tensor(tree):
        return np.array(tree.detach().numpy(), dtype=np.float64)
    return tree


def assert_tree_close(a, b, rtol=1e-7, atol=1e-9, path="out"):
    """Same structure (tuple vs list vs dict vs tensor, shapes) and close values."""
    if is_tensor(a) or is_tensor(b):
        a, b = tree_np(a), tree_np(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (path, type(a), type(b))
        assert a.shape == b.shape, (path, a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)
        return
    assert type(a) is type(b), (path, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_tree_close(a[k], b[k], rtol, atol, f"{path}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            assert_tree_close(x, y, rtol, atol, f"{path}[{i}]")
    else:
        assert a == b, path


def flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in flat_outputs(x)]
    if isinstance(out, dict):
        return [o for v in out.values() for o in flat_outputs(v)]
    return [out]


def fd_jacobian(fn, args, argnums, h=1e-6):
    """Central differences: J[i][j] of shape out_i.shape + args[argnums[j]].shape, for the
    flattened outputs of ``fn`` (run on tapegrad float64 tensors without recording)."""
    args = [np.array(a, dtype=np.float64) for a in args]

    def run(vals):
        with tapegrad.no_grad():
            out = fn(*[T(tapegrad, v) for v in vals])
        return [np.array(o.numpy(), dtype=np.float64) for o in flat_outputs(out)]

    base = run(args)
    jac = [[np.zeros(o.shape + args[j].shape) for j in argnums] for o in base]
    for jj, j in enumerate(argnums):
        for k in range(args[j].size):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[j].reshape(-1)[k] += h
            minus[j].reshape(-1)[k] -= h
            fp, fm = run(plus), run(minus)
            for i, o in enumerate(base):
                jac[i][jj].reshape(o.size, -1)[:, k] = ((fp[i] - fm[i]) / (2 * h)).reshape(-1)
    return jac


def fd_hessian(fn, x, h=1e-4):
    """Second central differences of a scalar ``fn`` of one array."""
    x = np.array(x, dtype=np.float64)
    n = x.size

    def f(v):
        with tapegrad.no_grad():
            return float(fn(T(tapegrad, v.reshape(x.shape))).item())

    H = np.zeros((n, n))
    flat = x.reshape(-1)
    for i in range(n):
        for j in range(n):
            vals = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                v = flat.copy()
                v[i] += si * h
                v[j] += sj * h
                vals.append(f(v))
            H[i, j] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h * h)
    return H.reshape(x.shape + x.shape)


FD = dict(rtol=1e-5, atol=1e-6)
FD2 = dict(rtol=1e-4, atol=1e-5)


def raises_like_torch(tape_call, torch_call, exc=RuntimeError):
    """Both raise ``exc`` with the same message (only tapegrad's call without PyTorch)."""
    with pytest.raises(exc) as ours:
        tape_call()
    if torch is not None:
        with pytest.raises(exc) as theirs:
            torch_call()
        assert str(ours.value).replace("tapegrad.", "torch.") == str(theirs.value)
    return str(ours.value)


# --------------------------------------------------------------------------------------------
# the functions (written with methods only, so they run on both libraries)

W_NP = arr(4, 4) / 2
MLP = {"W1": arr(3, 5) / 2, "b1": arr(5) / 4, "W2": arr(5, 2) / 2, "b2": arr(2) / 4}
X_NP, Y_NP = arr(6, 3), arr(6, 2)


def poly_trig(x):
    return (x ** 3 - 2 * x * x.sin() + x.cos().exp()).sum()


def rational(x):
    return (x.tanh() * (1 + x * x).reciprocal()).sum() + (x * 0.5).sigmoid().prod()


def make_vec_map(lib, dtype="float64"):
    W = lib.tensor(W_NP, dtype=getattr(lib, dtype))

    def vec_map(x):
        return (x @ W).tanh() * x.sin() + (x * x) @ W.t()

    return vec_map


def make_mlp_loss(lib):
    X, Y = T(lib, X_NP), T(lib, Y_NP)

    def loss(p):
        h = (X @ p["W1"] + p["b1"]).tanh()
        return ((h @ p["W2"] + p["b2"] - Y) ** 2).mean()

    return loss


def three_args(x, y, z):
    return (x.sin() * y).sum() * z.exp().sum() + (x * x).sum() * z[0]


def two_outputs(x, y):
    return (x.sin() * y[:3], (x * x).sum() * y)


SCALAR_FNS = {"poly_trig": (poly_trig, arr(5)), "rational": (rational, arr(4))}


# --------------------------------------------------------------------------------------------
# grad / grad_and_value / value_and_grad


@pytest.mark.parametrize("name", sorted(SCALAR_FNS))
def test_grad_against_finite_differences(name):
    fn, x = SCALAR_FNS[name]
    g = tf.grad(fn)(T(tapegrad, x))
    assert isinstance(g, tapegrad.Tensor) and g.shape == tuple(x.shape)
    np.testing.assert_allclose(tree_np(g), fd_jacobian(fn, [x], [0])[0][0], **FD)


@needs_torch
@pytest.mark.parametrize("name", sorted(SCALAR_FNS))
def test_grad_against_torch(name):
    fn, x = SCALAR_FNS[name]
    assert_tree_close(tf.grad(fn)(T(tapegrad, x)), torch_func.grad(fn)(T(torch, x)))
    ours = tf.grad_and_value(fn)(T(tapegrad, x))
    theirs = torch_func.grad_and_value(fn)(T(torch, x))
    assert_tree_close(ours, theirs)


def test_value_and_grad_order():
    fn, x = SCALAR_FNS["poly_trig"]
    xt = T(tapegrad, x)
    g, v = tf.grad_and_value(fn)(xt)
    v2, g2 = tf.value_and_grad(fn)(xt)
    assert v.shape == () and g.shape == xt.shape
    assert_tree_close(g, g2)
    assert_tree_close(v, v2)
    assert_tree_close(v, fn(xt))
    (v3, aux), g3 = tf.value_and_grad(lambda x: (fn(x), x * 2), has_aux=True)(xt)
    assert_tree_close(g3, g)
    assert_tree_close(v3, v)
    assert_tree_close(aux, xt * 2)


@pytest.mark.parametrize("argnums", [0, 1, 2, -1, (0, 2), (2, 0), (0, 1, 2)])
def test_grad_argnums_against_finite_differences(argnums):
    args = [arr(3), arr(3), arr(2)]
    g = tf.grad(three_args, argnums=argnums)(*to_lib(tapegrad, args))
    nums = (argnums,) if isinstance(argnums, int) else argnums
    nums = tuple(n % 3 for n in nums)
    fd = fd_jacobian(three_args, args, nums)[0]
    if isinstance(argnums, int):
        assert isinstance(g, tapegrad.Tensor)
        np.testing.assert_allclose(tree_np(g), fd[0], **FD)
    else:
        assert isinstance(g, tuple) and len(g) == len(nums)
        for gi, fi in zip(g, fd):
            np.testing.assert_allclose(tree_np(gi), fi, **FD)


@needs_torch
@pytest.mark.parametrize("argnums", [0, 1, -1, (0, 2), (2, 0), (0, 1, 2)])
def test_grad_argnums_against_torch(argnums):
    args = [arr(3), arr(3), arr(2)]
    ours = tf.grad_and_value(three_args, argnums=argnums)(*to_lib(tapegrad, args))
    theirs = torch_func.grad_and_value(three_args, argnums=argnums)(*to_lib(torch, args))
    assert_tree_close(ours, theirs)


def test_grad_mlp_dict_pytree_against_finite_differences():
    loss = make_mlp_loss(tapegrad)
    g = tf.grad(loss)(to_lib(tapegrad, MLP))
    assert isinstance(g, dict) and list(g) == list(MLP)
    names = list(MLP)

    def flat_loss(*arrays):
        return loss(dict(zip(names, arrays)))

    fd = fd_jacobian(flat_loss, [MLP[k] for k in names], range(len(names)))[0]
    for k, f in zip(names, fd):
        np.testing.assert_allclose(tree_np(g[k]), f, **FD)


@needs_torch
def test_grad_mlp_dict_pytree_against_torch():
    ours = tf.grad_and_value(make_mlp_loss(tapegrad))(to_lib(tapegrad, MLP))
    theirs = torch_func.grad_and_value(make_mlp_loss(torch))(to_lib(torch, MLP))
    assert_tree_close(ours, theirs)


@needs_torch
def test_grad_tuple_and_list_pytrees_against_torch():
    def f(xs, scale):
        a, (b, c) = xs["a"], xs["bc"]
        return (a.sin() * b).sum() * scale + (c * c).sum()

    args = ({"a": arr(3), "bc": [arr(3), arr(2)]}, 1.5)
    ours = tf.grad(f)(*to_lib(tapegrad, args))
    theirs = torch_func.grad(f)(*to_lib(torch, args))
    assert isinstance(ours["bc"], list)
    assert_tree_close(ours, theirs)


def test_grad_has_aux_and_kwargs():
    def f(x, y, *, power):
        loss = (x ** power * y).sum()
        return loss, {"pred": x * y, "pair": [x.sin(), (y,)]}

    x, y = T(tapegrad, arr(3)), T(tapegrad, arr(3))
    g, aux = tf.grad(f, has_aux=True)(x, y, power=3)
    assert_tree_close(g, 3 * x ** 2 * y)
    assert_tree_close(aux["pair"], [x.sin(), (y,)])
    assert_tree_close(aux["pred"], x * y)
    assert not aux["pred"].requires_grad and not g.requires_grad
    if torch is not None:
        tx, ty = T(torch, tree_np(x)), T(torch, tree_np(y))
        assert_tree_close((g, aux), torch_func.grad(f, has_aux=True)(tx, ty, power=3))


def test_grad_unused_and_constant_outputs_give_zeros():
    x, y = T(tapegrad, arr(3)), T(tapegrad, arr(2))
    gx, gy = tf.grad(lambda x, y: (x * x).sum(), argnums=(0, 1))(x, y)
    assert_tree_close(gy, np.zeros(2))
    assert_tree_close(gx, 2 * x)
    g = tf.grad(lambda x: tapegrad.tensor(3.0, dtype=tapegrad.float64))(x)
    assert_tree_close(g, np.zeros(3))


def test_outermost_results_do_not_require_grad():
    fn, x = SCALAR_FNS["poly_trig"]
    xt = T(tapegrad, x)
    g, v = tf.grad_and_value(fn)(xt)
    assert not g.requires_grad and not v.requires_grad and g.grad_fn is None
    out, vjp_fn = tf.vjp(make_vec_map(tapegrad), xt[:4])
    assert not out.requires_grad
    assert not vjp_fn(tapegrad.ones_like(out))[0].requires_grad
    assert not tf.jacrev(make_vec_map(tapegrad))(xt[:4]).requires_grad


def test_grad_ignores_outer_no_grad():
    fn, x = SCALAR_FNS["rational"]
    xt = T(tapegrad, x)
    with tapegrad.no_grad():
        g = tf.grad(fn)(xt)
    assert not g.requires_grad
    assert_tree_close(g, tf.grad(fn)(xt))


def test_grad_does_not_touch_dot_grad():
    x = T(tapegrad, arr(3)).requires_grad_()
    tf.grad(poly_trig)(x.detach())
    assert x.grad is None


# --------------------------------------------------------------------------------------------
# vjp / jacrev


def test_vjp_against_finite_differences():
    vec_map = make_vec_map(tapegrad)
    x, v = arr(4), arr(4)
    out, vjp_fn = tf.vjp(vec_map, T(tapegrad, x))
    J = fd_jacobian(vec_map, [x], [0])[0][0]
    (g,) = vjp_fn(T(tapegrad, v))
    np.testing.assert_allclose(tree_np(g), v @ J, **FD)
    (g2,) = vjp_fn(T(tapegrad, 2 * v))      # vjp_fn can be called again
    np.testing.assert_allclose(tree_np(g2), 2 * v @ J, **FD)
    assert_tree_close(out, vec_map(T(tapegrad, x)))


@needs_torch
def test_vjp_pytree_outputs_against_torch():
    def f(x, y):
        return {"s": x.sin() * y[:3], "pair": ((x * x).sum() * y, x.exp())}

    args = (arr(3), arr(4))
    cts = {"s": arr(3), "pair": (arr(4), arr(3))}
    ours_out, ours_fn = tf.vjp(f, *to_lib(tapegrad, args))
    theirs_out, theirs_fn = torch_func.vjp(f, *to_lib(torch, args))
    assert_tree_close(ours_out, theirs_out)
    assert_tree_close(ours_fn(to_lib(tapegrad, cts)), theirs_fn(to_lib(torch, cts)))


@needs_torch
def test_vjp_has_aux_against_torch():
    def f(x):
        return x.sin() * x, {"aux": x.cos()}

    x, ct = arr(4), arr(4)
    o1, fn1, a1 = tf.vjp(f, T(tapegrad, x), has_aux=True)
    o2, fn2, a2 = torch_func.vjp(f, T(torch, x), has_aux=True)
    assert_tree_close((o1, a1), (o2, a2))
    assert_tree_close(fn1(T(tapegrad, ct)), fn2(T(torch, ct)))


def test_jacrev_against_finite_differences():
    vec_map = make_vec_map(tapegrad)
    x = arr(4)
    J = tf.jacrev(vec_map)(T(tapegrad, x))
    assert J.shape == (4, 4)
    np.testing.assert_allclose(tree_np(J), fd_jacobian(vec_map, [x], [0])[0][0], **FD)


def test_jacrev_tuple_outputs_and_argnums_against_finite_differences():
    args = [arr(3), arr(4)]
    J = tf.jacrev(two_outputs, argnums=(0, 1))(*to_lib(tapegrad, args))
    fd = fd_jacobian(two_outputs, args, (0, 1))
    assert isinstance(J, tuple) and len(J) == 2
    for i in range(2):
        assert isinstance(J[i], tuple) and len(J[i]) == 2
        for j in range(2):
            np.testing.assert_allclose(tree_np(J[i][j]), fd[i][j], **FD)


@needs_torch
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0)])
def test_jacrev_shapes_and_values_against_torch(argnums):
    args = (arr(3), arr(4))
    ours = tf.jacrev(two_outputs, argnums=argnums)(*to_lib(tapegrad, args))
    theirs = torch_func.jacrev(two_outputs, argnums=argnums)(*to_lib(torch, args))
    assert_tree_close(ours, theirs)


@needs_torch
def test_jacrev_dict_output_has_aux_and_pytree_input_against_torch():
    def f(p, x):
        out = {"a": (p["w"] * x).sin(), "b": (p["w"] * p["v"][0]).sum()}
        return out, x * 2

    args = ({"w": arr(3), "v": [arr(3)]}, arr(3))
    ours = tf.jacrev(f, has_aux=True)(*to_lib(tapegrad, args))
    theirs = torch_func.jacrev(f, has_aux=True)(*to_lib(torch, args))
    assert_tree_close(ours, theirs)


@needs_torch
def test_jacrev_mlp_against_torch():
    ours = tf.jacrev(make_mlp_loss(tapegrad))(to_lib(tapegrad, MLP))
    theirs = torch_func.jacrev(make_mlp_loss(torch))(to_lib(torch, MLP))
    assert_tree_close(ours, theirs)


@needs_torch
def test_jacrev_scalar_and_matrix_shapes_against_torch():
    def f(x):
        return (x @ x.t()).exp(), x.sum()

    x = arr(2, 3)
    assert_tree_close(tf.jacrev(f)(T(tapegrad, x)), torch_func.jacrev(f)(T(torch, x)))


def test_jacrev_independent_output_is_zero():
    x = T(tapegrad, arr(3))
    J = tf.jacrev(lambda x: (x.sin(), tapegrad.ones(2, dtype=tapegrad.float64)))(x)
    assert_tree_close(J[1], np.zeros((2, 3)))


# --------------------------------------------------------------------------------------------
# torch.func error messages


def test_grad_error_non_scalar_output():
    x = arr(3)
    msg = raises_like_torch(lambda: tf.grad(lambda x: x * 2)(T(tapegrad, x)),
                            lambda: torch_func.grad(lambda x: x * 2)(T(torch, x)))
    assert msg == ("grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                   "tensor with 1 dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
    raises_like_torch(lambda: tf.grad(lambda x: x.reshape(1, 3)[:, :1])(T(tapegrad, x)),
                      lambda: torch_func.grad(lambda x: x.reshape(1, 3)[:, :1])(T(torch, x)))


@pytest.mark.parametrize("case", ["float_output", "aux_not_pair", "argnum_range", "dup",
                                  "empty", "list_argnums", "str_argnum"])
def test_grad_error_messages(case):
    def make(lib):
        x = T(lib, arr(3))
        fns = {
            "float_output": lambda: lib.func.grad(lambda x: 3.0)(x),
            "aux_not_pair": lambda: lib.func.grad(lambda x: x.sum(), has_aux=True)(x),
            "argnum_range": lambda: lib.func.grad(lambda x: x.sum(), argnums=2)(x),
            "dup": lambda: lib.func.grad(lambda x, y: x.sum(), argnums=(0, 0))(x, x),
            "empty": lambda: lib.func.grad(lambda x: x.sum(), argnums=())(x),
            "list_argnums": lambda: lib.func.grad(lambda x: x.sum(), argnums=[0])(x),
            "str_argnum": lambda: lib.func.grad(lambda x: x.sum(), argnums=("0",))(x),
        }
        return fns[case]

    raises_like_torch(make(tapegrad), make(torch) if torch is not None else None)


def test_grad_error_non_tensor_aux():
    x = arr(3)
    raises_like_torch(lambda: tf.grad(lambda x: (x.sum(), "aux"), has_aux=True)(T(tapegrad, x)),
                      lambda: torch_func.grad(lambda x: (x.sum(), "aux"), has_aux=True)(
                          T(torch, x)))


def test_grad_error_non_tensor_argument():
    raises_like_torch(lambda: tf.grad(lambda x: x)(3.0),
                      lambda: torch_func.grad(lambda x: x)(3.0), exc=ValueError)


def test_vjp_error_messages():
    def cases(lib):
        x = T(lib, arr(3))
        F = lib.func
        return [
            lambda: F.vjp(lambda x: x.sin(), x, has_aux=True),
            lambda: F.vjp(lambda x: 3, x),
            lambda: F.vjp(lambda x: None, x),
            lambda: F.vjp(lambda x: x > 0, x),
            lambda: F.vjp(lambda x: (x.sin(), {"a": x}), x)[1](x),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [None] * len(ours)
    for a, b in zip(ours, theirs):
        raises_like_torch(a, b)


def test_jvp_argument_errors():
    def cases(lib):
        x = T(lib, arr(3))
        F = lib.func
        return [
            lambda: F.jvp(lambda x: x.sin(), x, x),
            lambda: F.jvp(lambda x: x.sin(), (x,), (x, x)),
            lambda: F.jvp(lambda x: x.sin(), (), ()),
            lambda: F.jvp(lambda x: x.sin(), (x,), (3.0,)),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [None] * len(ours)
    for a, b in zip(ours, theirs):
        raises_like_torch(a, b)


def test_jacrev_chunk_size_error():
    with pytest.raises(ValueError, match="jacrev: `chunk_size` should be greater than 0."):
        tf.jacrev(poly_trig, chunk_size=0)


# --------------------------------------------------------------------------------------------
# torch.autograd.functional: first order


def _inputs(kind):
    if kind == "tensor":
        return arr(3)
    return (arr(3), arr(2))


def _fn(in_kind, out_kind):
    def f(*xs):
        x = xs[0]
        y = xs[1] if len(xs) > 1 else x[:2]
        a = x.sin() * y.sum()
        if out_kind == "tensor":
            return a
        if out_kind == "scalar":
            return (a * x).sum()
        return (a, (x * x).sum() * y.exp())

    return f


@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "scalar", "tuple"])
@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_against_finite_differences(in_kind, out_kind, vectorize):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    J = taf.jacobian(f, to_lib(tapegrad, inp), vectorize=vectorize)
    args = [inp] if in_kind == "tensor" else list(inp)
    fd = fd_jacobian(f, args, range(len(args)))
    if out_kind != "tuple":
        assert isinstance(J, tuple if in_kind == "tuple" else tapegrad.Tensor)
        J, fd = (J,), fd
    else:
        assert isinstance(J, tuple) and len(J) == 2
    for i, Ji in enumerate(J):
        Ji = Ji if in_kind == "tuple" else (Ji,)
        for j, Jij in enumerate(Ji):
            assert not Jij.requires_grad
            np.testing.assert_allclose(tree_np(Jij), fd[i][j], **FD)


@needs_torch
@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "scalar", "tuple"])
@pytest.mark.parametrize("vectorize", [False, True])
def test_jacobian_against_torch(in_kind, out_kind, vectorize):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    assert_tree_close(taf.jacobian(f, to_lib(tapegrad, inp), vectorize=vectorize),
                      torch_af.jacobian(f, to_lib(torch, inp), vectorize=vectorize))


@needs_torch
def test_jacobian_independent_output_zeros_against_torch():
    def f(x, y):
        return x.exp(), y * 0 + 1, x.sum().reshape(1) * 2

    inp = (arr(3), arr(2))
    ours = taf.jacobian(f, to_lib(tapegrad, inp))
    theirs = torch_af.jacobian(f, to_lib(torch, inp))
    assert_tree_close(ours, theirs)


def test_jacobian_strict_errors():
    def cases(lib):
        A = lib.autograd.functional
        x, y = T(lib, arr(3)), T(lib, arr(2))
        return [
            lambda: A.jacobian(lambda x, y: x.exp(), (x, y), strict=True),
            lambda: A.jacobian(lambda x: x.detach() * 2, x, strict=True),
            lambda: A.jacobian(lambda x: x.exp(), x, strict=True, vectorize=True),
            lambda: A.vjp(lambda x, y: x.exp().sum(), (x, y), strict=True),
            lambda: A.vjp(lambda x: x.detach().sum(), x, strict=True),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [None] * len(ours)
    msgs = [raises_like_torch(a, b) for a, b in zip(ours, theirs)]
    assert msgs[0] == ("Output 0 of the user-provided function is independent of input 1. "
                       "This is not allowed in strict mode.")


def test_jacobian_strategy_errors():
    def cases(lib):
        A = lib.autograd.functional
        x = T(lib, arr(3))
        return [
            (lambda: A.jacobian(lambda x: x.exp(), x, strategy="forward-mode"),
             NotImplementedError),
            (lambda: A.jacobian(lambda x: x.exp(), x, strategy="forward-mode", strict=True,
                                vectorize=True), RuntimeError),
            (lambda: A.jacobian(lambda x: x.exp(), x, strategy="forward-mode",
                                create_graph=True, vectorize=True), NotImplementedError),
            (lambda: A.jacobian(lambda x: x.exp(), x, strategy="sideways"), AssertionError),
            (lambda: A.hessian(lambda x: x.sum(), x, outer_jacobian_strategy="sideways"),
             AssertionError),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [(None, None)] * len(ours)
    msgs = [raises_like_torch(a, b, exc) for (a, exc), (b, _) in zip(ours, theirs)]
    assert msgs[0] == ("Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
                       "only implemented for `vectorize=True`.")


@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "scalar", "tuple"])
def test_functional_vjp_against_finite_differences(in_kind, out_kind):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    args = [inp] if in_kind == "tensor" else list(inp)
    with tapegrad.no_grad():
        outs = flat_outputs(f(*to_lib(tapegrad, args)))
    vs = [arr(*o.shape) for o in outs]
    v = tuple(vs) if out_kind == "tuple" else vs[0]
    out, res = taf.vjp(f, to_lib(tapegrad, inp), to_lib(tapegrad, v))
    fd = fd_jacobian(f, args, range(len(args)))
    res = res if in_kind == "tuple" else (res,)
    assert isinstance(out, tuple) == (out_kind == "tuple")
    for j, r in enumerate(res):
        expect = sum(np.tensordot(vi, fd[i][j], axes=vi.ndim) for i, vi in enumerate(vs))
        np.testing.assert_allclose(tree_np(r), expect, **FD)


@needs_torch
@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "scalar", "tuple"])
def test_functional_vjp_against_torch(in_kind, out_kind):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    args = [inp] if in_kind == "tensor" else list(inp)
    with torch.no_grad():
        outs = flat_outputs(f(*to_lib(torch, args)))
    vs = tuple(arr(*o.shape) for o in outs)
    v = vs if out_kind == "tuple" else vs[0]
    v = None if out_kind == "scalar" else v
    assert_tree_close(taf.vjp(f, to_lib(tapegrad, inp), to_lib(tapegrad, v)),
                      torch_af.vjp(f, to_lib(torch, inp), to_lib(torch, v)))


def test_functional_argument_errors():
    def cases(lib):
        A = lib.autograd.functional
        x = T(lib, arr(3))
        return [
            (lambda: A.vjp(lambda x: x.exp(), x), RuntimeError),
            (lambda: A.vjp(lambda x: x.exp(), [x]), TypeError),
            (lambda: A.vjp(lambda x: x.exp(), (x, 3.0)), TypeError),
            (lambda: A.vjp(lambda x: x.exp(), x, v=T(lib, arr(2))), RuntimeError),
            (lambda: A.vjp(lambda x: (x.exp(), x), x, v=(x,)), RuntimeError),
            (lambda: A.vjp(lambda x: x.exp(), x, v=(x, x)), RuntimeError),
            (lambda: A.vjp(lambda x: (x.exp(), x), x, v=(x, x[:2])), RuntimeError),
            (lambda: A.vjp(lambda x: 3.0, x), TypeError),
            (lambda: A.jacobian(lambda x: [x], x), TypeError),
            (lambda: A.jvp(lambda x: x.exp(), x), RuntimeError),
            (lambda: A.hvp(lambda x: x.exp().sum(), x), RuntimeError),
            (lambda: A.vhp(lambda x: x.exp().sum(), x), RuntimeError),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [(None, None)] * len(ours)
    for (a, exc), (b, _) in zip(ours, theirs):
        raises_like_torch(a, b, exc)


# --------------------------------------------------------------------------------------------
# second order and forward mode: these need autograd.grad(create_graph=True)


@pytest.mark.parametrize("name", sorted(SCALAR_FNS))
def test_so_grad_of_grad_scalar(name):
    fn, _ = SCALAR_FNS[name]
    x = arr(1)[0]

    def f(x):
        return fn(x.reshape(1))

    d2 = tf.grad(tf.grad(f))(T(tapegrad, x))
    assert d2.shape == () and not d2.requires_grad
    np.testing.assert_allclose(tree_np(d2), fd_hessian(f, np.array(x)), **FD2)
    if torch is not None:
        assert_tree_close(d2, torch_func.grad(torch_func.grad(f))(T(torch, x)))
    d3 = tf.grad(tf.grad(tf.grad(f)))(T(tapegrad, x))
    h = 1e-4
    fd3 = (tf.grad(tf.grad(f))(T(tapegrad, x + h)).item()
           - tf.grad(tf.grad(f))(T(tapegrad, x - h)).item()) / (2 * h)
    np.testing.assert_allclose(d3.item(), fd3, **FD2)


@pytest.mark.parametrize("name", sorted(SCALAR_FNS))
@pytest.mark.parametrize("how", ["hessian", "jacrev_jacrev", "jacfwd_jacrev", "jacfwd_jacfwd",
                                 "jacrev_jacfwd"])
def test_so_hessian_compositions(name, how):
    fn, x = SCALAR_FNS[name]
    make = {"hessian": lambda f: tf.hessian(f),
            "jacrev_jacrev": lambda f: tf.jacrev(tf.jacrev(f)),
            "jacfwd_jacrev": lambda f: tf.jacfwd(tf.jacrev(f)),
            "jacfwd_jacfwd": lambda f: tf.jacfwd(tf.jacfwd(f)),
            "jacrev_jacfwd": lambda f: tf.jacrev(tf.jacfwd(f))}[how]
    H = make(fn)(T(tapegrad, x))
    assert H.shape == x.shape + x.shape and not H.requires_grad
    np.testing.assert_allclose(tree_np(H), fd_hessian(fn, x), **FD2)
    if torch is not None:
        assert_tree_close(H, torch_func.hessian(fn)(T(torch, x)))


@needs_torch
@pytest.mark.parametrize("argnums", [0, (0, 1), (1, 2)])
def test_so_hessian_argnums_against_torch(argnums):
    args = (arr(3), arr(3), arr(2))
    assert_tree_close(tf.hessian(three_args, argnums=argnums)(*to_lib(tapegrad, args)),
                      torch_func.hessian(three_args, argnums=argnums)(*to_lib(torch, args)))


def test_so_hessian_mlp_against_finite_differences():
    loss = make_mlp_loss(tapegrad)
    p = to_lib(tapegrad, MLP)
    H = tf.hessian(lambda w2: loss({**p, "W2": w2}))(p["W2"])
    w2 = MLP["W2"]
    np.testing.assert_allclose(tree_np(H), fd_hessian(lambda w: loss({**p, "W2": w}), w2),
                               **FD2)


@needs_torch
def test_so_hessian_mlp_dict_against_torch():
    ours = tf.hessian(make_mlp_loss(tapegrad))(to_lib(tapegrad, MLP))
    theirs = torch_func.hessian(make_mlp_loss(torch))(to_lib(torch, MLP))
    assert_tree_close(ours, theirs)


def test_so_jvp_against_finite_differences():
    vec_map = make_vec_map(tapegrad)
    x, v = arr(4), arr(4)
    out, jv = tf.jvp(vec_map, (T(tapegrad, x),), (T(tapegrad, v),))
    J = fd_jacobian(vec_map, [x], [0])[0][0]
    np.testing.assert_allclose(tree_np(jv), J @ v, **FD)
    assert_tree_close(out, vec_map(T(tapegrad, x)))
    assert not jv.requires_grad and not out.requires_grad


@needs_torch
def test_so_jvp_tuple_outputs_has_aux_against_torch():
    def f(x, y):
        return two_outputs(x, y), {"aux": x * 3}

    args, tans = (arr(3), arr(4)), (arr(3), arr(4))
    ours = tf.jvp(f, to_lib(tapegrad, args), to_lib(tapegrad, tans), has_aux=True)
    theirs = torch_func.jvp(f, to_lib(torch, args), to_lib(torch, tans), has_aux=True)
    assert_tree_close(ours, theirs)


@needs_torch
def test_so_jvp_identity_and_constant_outputs_against_torch():
    const = arr(2)

    def f(x):
        return x, x * 0 + 1, T(tapegrad if isinstance(x, tapegrad.Tensor) else torch, const)

    x, t = arr(3), arr(3)
    ours = tf.jvp(f, (T(tapegrad, x),), (T(tapegrad, t),))
    theirs = torch_func.jvp(f, (T(torch, x),), (T(torch, t),))
    assert_tree_close(ours, theirs)


def test_jvp_strict_error():
    x = arr(3)
    raises_like_torch(
        lambda: tf.jvp(lambda x: tapegrad.ones(2), (T(tapegrad, x),), (T(tapegrad, x),),
                       strict=True),
        lambda: torch_func.jvp(lambda x: torch.ones(2), (T(torch, x),), (T(torch, x),),
                               strict=True))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0)])
def test_so_jacfwd_against_finite_differences_and_torch(argnums):
    args = [arr(3), arr(4)]
    J = tf.jacfwd(two_outputs, argnums=argnums)(*to_lib(tapegrad, args))
    nums = (argnums,) if isinstance(argnums, int) else argnums
    fd = fd_jacobian(two_outputs, args, nums)
    for i in range(2):
        Ji = (J[i],) if isinstance(argnums, int) else J[i]
        for j in range(len(nums)):
            np.testing.assert_allclose(tree_np(Ji[j]), fd[i][j], **FD)
    if torch is not None:
        assert_tree_close(J, torch_func.jacfwd(two_outputs, argnums=argnums)(
            *to_lib(torch, args)))


@needs_torch
def test_so_jacfwd_has_aux_pytree_against_torch():
    def f(p, x):
        return {"a": (p["w"] * x).sin(), "b": (p["w"] * p["v"][0]).sum()}, x * 2

    args = ({"w": arr(3), "v": [arr(3)]}, arr(3))
    assert_tree_close(tf.jacfwd(f, has_aux=True)(*to_lib(tapegrad, args)),
                      torch_func.jacfwd(f, has_aux=True)(*to_lib(torch, args)))


def test_so_vjp_inside_grad_and_closure():
    # d/dx [ vjp of (y -> x*y*y) at y=c, cotangent 1 ] = d/dx [2*x*c] = 2*c
    c = T(tapegrad, arr(3))

    def outer(x):
        _, fn = tf.vjp(lambda y: x * y * y, c)
        return fn(tapegrad.ones_like(c))[0].sum()

    g = tf.grad(outer)(T(tapegrad, arr(3)))
    assert_tree_close(g, 2 * c)


def test_so_grad_result_differentiable_when_input_requires_grad():
    fn, x = SCALAR_FNS["poly_trig"]
    xt = T(tapegrad, x).requires_grad_()
    g = tf.grad(fn)(xt)
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_allclose(tree_np(xt.grad), fd_hessian(fn, x).sum(0), **FD2)


@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "scalar", "tuple"])
def test_so_functional_jvp(in_kind, out_kind):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    args = [inp] if in_kind == "tensor" else list(inp)
    vs = [arr(*a.shape) for a in args]
    v = tuple(vs) if in_kind == "tuple" else vs[0]
    out, res = taf.jvp(f, to_lib(tapegrad, inp), to_lib(tapegrad, v))
    fd = fd_jacobian(f, args, range(len(args)))
    res = res if out_kind == "tuple" else (res,)
    for i, r in enumerate(res):
        expect = sum(np.tensordot(fd[i][j], vj, axes=vj.ndim) for j, vj in enumerate(vs))
        np.testing.assert_allclose(tree_np(r), expect, **FD)
    if torch is not None:
        assert_tree_close((out, res if out_kind == "tuple" else res[0]),
                          torch_af.jvp(f, to_lib(torch, inp), to_lib(torch, v)))


@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("out_kind", ["tensor", "tuple"])
def test_so_functional_jacobian_forward_mode(in_kind, out_kind):
    f, inp = _fn(in_kind, out_kind), _inputs(in_kind)
    ours = taf.jacobian(f, to_lib(tapegrad, inp), vectorize=True, strategy="forward-mode")

    def as_tuples(t):
        return tuple(as_tuples(x) for x in t) if isinstance(t, (list, tuple)) else t

    assert_tree_close(as_tuples(ours), taf.jacobian(f, to_lib(tapegrad, inp)))
    if torch is not None:
        assert_tree_close(ours, torch_af.jacobian(f, to_lib(torch, inp), vectorize=True,
                                                  strategy="forward-mode"))


@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
@pytest.mark.parametrize("outer", ["reverse-mode", "forward-mode"])
def test_so_functional_hessian(in_kind, outer):
    inp = _inputs(in_kind)
    f = _fn(in_kind, "scalar")
    vec = outer == "forward-mode"
    H = taf.hessian(f, to_lib(tapegrad, inp), vectorize=vec, outer_jacobian_strategy=outer)
    if in_kind == "tensor":
        np.testing.assert_allclose(tree_np(H), fd_hessian(f, inp), **FD2)
    if torch is not None:
        assert_tree_close(H, torch_af.hessian(f, to_lib(torch, inp), vectorize=vec,
                                              outer_jacobian_strategy=outer))


@pytest.mark.parametrize("which", ["hvp", "vhp"])
@pytest.mark.parametrize("in_kind", ["tensor", "tuple"])
def test_so_functional_hvp_vhp(which, in_kind):
    inp = _inputs(in_kind)
    f = _fn(in_kind, "scalar")
    args = [inp] if in_kind == "tensor" else list(inp)
    vs = tuple(arr(*a.shape) for a in args)
    v = vs if in_kind == "tuple" else vs[0]
    out, res = getattr(taf, which)(f, to_lib(tapegrad, inp), to_lib(tapegrad, v))
    if in_kind == "tensor":
        expect = fd_hessian(f, inp) @ vs[0]
        np.testing.assert_allclose(tree_np(res), expect, **FD2)
    if torch is not None:
        assert_tree_close((out, res), getattr(torch_af, which)(f, to_lib(torch, inp),
                                                               to_lib(torch, v)))


def test_so_functional_hvp_mlp():
    loss = make_mlp_loss(tapegrad)
    p = to_lib(tapegrad, MLP)
    w2, v = MLP["W2"], arr(*MLP["W2"].shape)
    _, hv = taf.hvp(lambda w: loss({**p, "W2": w}), T(tapegrad, w2), T(tapegrad, v))
    H = fd_hessian(lambda w: loss({**p, "W2": w}), w2)
    np.testing.assert_allclose(tree_np(hv), np.tensordot(H, v, axes=2), **FD2)


def test_so_functional_create_graph():
    x = T(tapegrad, arr(3)).requires_grad_()
    J = taf.jacobian(lambda x: x.sin() * x, x, create_graph=True)
    assert J.requires_grad
    J.sum().backward()
    xs = tree_np(x)
    np.testing.assert_allclose(tree_np(x.grad), 2 * np.cos(xs) - xs * np.sin(xs), **FD)
    out, g = taf.vjp(lambda x: (x ** 3).sum(), x, create_graph=True)
    assert out.requires_grad and g.requires_grad


def test_so_functional_strict_second_order_errors():
    def cases(lib):
        A = lib.autograd.functional
        x = T(lib, arr(3))
        return [
            lambda: A.hessian(lambda x: (2 * x).sum(), x, strict=True),
            lambda: A.hvp(lambda x: (2 * x).sum(), x, v=x, strict=True),
            lambda: A.vhp(lambda x: (2 * x).sum(), x, v=x, strict=True),
            lambda: A.jvp(lambda x: x.detach() * 2, x, v=x, strict=True),
        ]

    ours = cases(tapegrad)
    theirs = cases(torch) if torch is not None else [None] * len(ours)
    for a, b in zip(ours, theirs):
        raises_like_torch(a, b)


NESTED = {
    "perturbation_confusion": lambda F, x: F.grad(
        lambda x: (x * F.grad(lambda y: (x * y).sum())(x)).sum())(x),
    "closure_inner_grad": lambda F, x: F.grad(
        lambda x: F.grad(lambda y: (x * y).sum())(x).sum())(x),
    "jvp_of_grad": lambda F, x: F.jvp(F.grad(poly_trig), (x,), (x * 0 + 1,))[1],
    "grad_of_jvp": lambda F, x: F.grad(
        lambda x: F.jvp(lambda z: z.exp() * z, (x,), (x,))[1].sum())(x),
    "jacrev_of_vjp": lambda F, x: F.jacrev(
        lambda x: F.vjp(lambda z: z.sin() * z, x)[1](x)[0])(x),
    "jacrev_of_jacfwd": lambda F, x: F.jacrev(F.jacfwd(lambda x: x.sin() * x.sum()))(x),
    "jacfwd_of_hessian": lambda F, x: F.jacfwd(F.hessian(lambda x: (x ** 4).sum()))(x),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(NESTED))
def test_so_nested_compositions_against_torch(name):
    x = arr(3)
    ours = NESTED[name](tf, T(tapegrad, x))
    assert not ours.requires_grad
    assert_tree_close(ours, NESTED[name](torch_func, T(torch, x)))


def test_so_jvp_of_grad_against_finite_differences():
    x = arr(5)
    hv = NESTED["jvp_of_grad"](tf, T(tapegrad, x))
    np.testing.assert_allclose(tree_np(hv), fd_hessian(poly_trig, x).sum(1), **FD2)


@needs_torch
def test_float32_dtypes_against_torch():
    x = arr(4)
    vec_map = make_vec_map(tapegrad, "float32")
    xt = tapegrad.tensor(x, dtype=tapegrad.float32)
    J = tf.jacrev(vec_map)(xt)
    g = tf.grad(lambda x: vec_map(x).sum())(xt)
    assert J.dtype == tapegrad.float32 and g.dtype == tapegrad.float32
    tvec = make_vec_map(torch, "float32")
    xs = torch.tensor(x, dtype=torch.float32)
    assert_tree_close(J, torch_func.jacrev(tvec)(xs), rtol=1e-5, atol=1e-6)
    assert_tree_close(g, torch_func.grad(lambda x: tvec(x).sum())(xs), rtol=1e-5, atol=1e-6)
