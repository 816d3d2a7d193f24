"""The compiled forward rules beside each backward rule (``_tape._unary_f``/``_binary_f``,
which a tape replay will run) agree with the eager forwards the op table declares."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tapegrad import _tape as T
from tapegrad._tensor import _NP_BINARY

XS = [-1.7, -0.6, -0.2, 0.0, 0.3, 0.8, 1.9]
CONSTANT_OPS = {  # op: (c, d, reference)
    T.ADDC: (0.7, 0.0, lambda x, c: x + c),
    T.SUBC: (0.7, 0.0, lambda x, c: x - c),
    T.RSUBC: (0.7, 0.0, lambda x, c: c - x),
    T.MULC: (0.7, 0.0, lambda x, c: x * c),
    T.DIVC: (0.7, 0.0, lambda x, c: x / c),
    T.POWC: (3.0, 0.0, lambda x, c: x**c),
    T.RPOWC: (0.7, 0.0, lambda x, c: c**x),
    T.FMODC: (0.7, 0.0, lambda x, c: math.fmod(x, c)),
    T.REMAINDERC: (0.7, 0.0, lambda x, c: x - math.floor(x / c) * c),
    T.MULADDC: (0.7, 0.3, lambda x, c: x * c + 0.3),  # made by Trace.optimize only
}
CONSTANTS = {T.LEAKY_RELU: (0.1, 0.0), T.ELU: (1.3, 0.0), T.GELU: (1.0, 0.0),
             T.SOFTPLUS: (2.0, 1.5), T.HARDTANH: (-0.5, 0.5), T.CLAMP: (-0.5, 0.5)}
UNARY = [o for o in T.OPS if o.kind == T.UNARY and o.code != T.CMPC]  # see test_comparisons


@pytest.mark.parametrize("spec", UNARY, ids=lambda o: f"{o.name}-{o.code}")
def test_unary_forward_rule_matches_the_eager_forward(spec):
    for x in XS:
        if spec.code in CONSTANT_OPS:
            c, d, ref = CONSTANT_OPS[spec.code]
            expected = ref(x, c)
        elif spec.py_fn is None:  # identities: views, clones, refreshes
            c, d = 0.0, 0.0
            expected = x
        else:  # the array forward is the reference; the scalar one where it doesn't raise
            c, d = CONSTANTS.get(spec.code, (0.0, 0.0))
            args = (c, d) if spec.nconst else ()
            with np.errstate(all="ignore"):
                expected = float(np.asarray(spec.np_fn(np.array([x]), *args)).reshape(-1)[0])
            try:
                scalar = float(spec.py_fn(x, *args))
            except (ValueError, ArithmeticError):  # the fast path falls back to NumPy then
                scalar = expected
            np.testing.assert_allclose(scalar, expected, rtol=1e-12, equal_nan=True)
        got = T._unary_f(spec.code, x, c, d)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True,
                                   err_msg=f"{spec.name}({x})")


@pytest.mark.parametrize("spec", [o for o in T.OPS if o.kind == T.BINARY and o.code != T.CMP],
                         ids=lambda o: f"{o.name}-{o.code}")
def test_binary_forward_rule_matches_the_eager_forward(spec):
    for x in XS:
        for z in (0.4, -1.3, 2.0):
            if spec.code == T.LERP:
                expected = x + 0.3 * (z - x)
            else:
                with np.errstate(all="ignore"):
                    expected = float(_NP_BINARY[spec.code](x, z))
            got = T._binary_f(spec.code, x, z, 0.3)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True,
                                       err_msg=f"{spec.name}({x}, {z})")


COMPARISONS = {T.CMP_LT: np.less, T.CMP_LE: np.less_equal, T.CMP_GT: np.greater,
               T.CMP_GE: np.greater_equal, T.CMP_EQ: np.equal, T.CMP_NE: np.not_equal}


@pytest.mark.parametrize("how", sorted(COMPARISONS))
def test_comparisons(how):
    """The comparisons a trace records (CMPC: x vs a constant, CMP: two records): 0/1 as
    NumPy's, nan compares unequal, and their derivatives are zero."""
    for x in XS + [math.nan, math.inf]:
        for z in (0.3, -0.6, 0.0, math.nan, -math.inf):
            expected = float(COMPARISONS[how](x, z))
            assert T._unary_f(T.CMPC, x, z, float(how)) == expected
            assert T._binary_f(T.CMP, x, z, float(how)) == expected
            assert T._unary_b(T.CMPC, 1.0, x, expected, z, float(how)) == 0.0
            assert T._binary_ba(T.CMP, 1.0, x, z, expected, float(how)) == 0.0
            assert T._binary_bb(T.CMP, 1.0, x, z, expected, float(how)) == 0.0


EXTREMES = (-1.7, 0.0, -0.0, 1e308, -1e308, math.inf, -math.inf, math.nan, 800.0)
ELEMENTWISE = ("exp log sin cos tan tanh sigmoid sqrt abs reciprocal log1p expm1 log2 log10 exp2 "
               "sinh cosh asin acos atan erf rsqrt sign floor ceil round trunc relu neg").split()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # PyTorch is silent at these points
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_at_extreme_values_matches_torch(name, dtype):
    """nan, inf, -0.0 and overflow give PyTorch's values on the 0-d fast path and on arrays."""
    torch = pytest.importorskip("torch")
    import tapegrad

    for v in EXTREMES:
        theirs = getattr(torch.tensor(v, dtype=getattr(torch, dtype)), name)().item()
        for shape in ((), (1,)):
            x = tapegrad.tensor(np.full(shape, v), dtype=getattr(tapegrad, dtype))
            ours = float(getattr(x, name)().numpy().reshape(-1)[0])
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, equal_nan=True,
                                       err_msg=f"{name}({v}) {dtype} shape {shape}")
            assert math.copysign(1.0, ours) == math.copysign(1.0, theirs) or ours != ours, \
                f"sign of {name}({v}) {dtype} shape {shape}"


def test_no_module_constant_of_the_tape_is_assigned_twice():
    """Opcodes, kinds and flags are plain module constants: a second assignment of a name
    (a helper's constant named like an opcode) would silently renumber an op."""
    import ast
    tree = ast.parse(open(T.__file__).read())
    seen = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(name, ast.Name):
                        seen[name.id] = seen.get(name.id, 0) + 1
    assert not [k for k, v in seen.items() if v > 1]
