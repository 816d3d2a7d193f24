"""Recurrent layers, attention, transformers, embedding bags and parameter containers.

* every module row of ``MODULE_CASES``: ``repr`` equal to PyTorch's, forward values equal to
  PyTorch's (float64 and float32) with PyTorch's weights loaded through ``load_state_dict``,
  the gradients of every input and parameter equal to PyTorch's, and (no PyTorch needed)
  equal to central differences in float64;
* every functional row of ``FUNC_CASES`` the same way;
* errors in PyTorch's words, parameter registration of ``ParameterList``/``ParameterDict``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.testing import gradcheck

try:
    import torch
except ImportError:  # the PyTorch comparisons skip, everything else runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _np(t) -> np.ndarray:
    return np.array(t.detach().numpy())


def _outputs(out) -> list:
    """The tensors of a (possibly nested) module result, None dropped."""
    if out is None:
        return []
    if isinstance(out, tuple):
        return [t for o in out for t in _outputs(o)]
    return [out]


# ---------------------------------------------------------------- module rows

@dataclass
class MCase:
    name: str
    build: Callable  # build(lib, dtype) -> module
    shapes: list  # shapes of the float inputs (all require grad)
    call: Callable = lambda m, lib, *xs: m(*xs)  # call(module, lib, *inputs) -> result
    eval: bool = True
    seed: int = 0
    fd_points: int = 3
    rtol32: float = 1e-4
    atol32: float = 1e-5


def _bool_mask(lib, array):
    return lib.tensor(np.asarray(array, dtype=bool))


def _float_mask(lib, array, dtype):
    return lib.tensor(np.asarray(array, dtype=np.float64), dtype=dtype)


KPM = [[False, False, True, False, True], [False, True, False, False, False]]
CAUSAL = np.triu(np.full((5, 5), -np.inf), 1)

MODULE_CASES = [
    # recurrent layers: (L, N, H_in), unbatched (L, H_in), batch_first, h0/c0
    MCase("rnn_tanh", lambda lib, dt: lib.nn.RNN(3, 4, dtype=dt), [(5, 2, 3)]),
    MCase("rnn_tanh_h0", lambda lib, dt: lib.nn.RNN(3, 4, dtype=dt), [(5, 2, 3), (1, 2, 4)]),
    MCase("rnn_relu_2l_bi", lambda lib, dt: lib.nn.RNN(3, 4, 2, nonlinearity="relu",
                                                      bidirectional=True, dtype=dt),
          [(4, 2, 3), (4, 2, 4)]),
    MCase("rnn_unbatched", lambda lib, dt: lib.nn.RNN(3, 4, dtype=dt), [(5, 3), (1, 4)]),
    MCase("rnn_nobias_bf", lambda lib, dt: lib.nn.RNN(3, 4, bias=False, batch_first=True,
                                                     dtype=dt), [(2, 5, 3)]),
    MCase("rnn_len1_batch1", lambda lib, dt: lib.nn.RNN(2, 3, dtype=dt), [(1, 1, 2)]),
    MCase("lstm", lambda lib, dt: lib.nn.LSTM(3, 4, dtype=dt), [(5, 2, 3)]),
    MCase("lstm_h0c0", lambda lib, dt: lib.nn.LSTM(3, 4, dtype=dt), [(5, 2, 3), (1, 2, 4),
                                                                      (1, 2, 4)],
          call=lambda m, lib, x, h, c: m(x, (h, c))),
    MCase("lstm_2l_bi_bf", lambda lib, dt: lib.nn.LSTM(3, 4, 2, batch_first=True,
                                                      bidirectional=True, dtype=dt),
          [(2, 4, 3)]),
    MCase("lstm_proj", lambda lib, dt: lib.nn.LSTM(3, 4, 2, proj_size=2, bidirectional=True,
                                                  dtype=dt), [(4, 2, 3), (4, 2, 2), (4, 2, 4)],
          call=lambda m, lib, x, h, c: m(x, (h, c))),
    MCase("lstm_unbatched", lambda lib, dt: lib.nn.LSTM(3, 4, dtype=dt), [(5, 3), (1, 4),
                                                                          (1, 4)],
          call=lambda m, lib, x, h, c: m(x, (h, c))),
    MCase("gru", lambda lib, dt: lib.nn.GRU(3, 4, dtype=dt), [(5, 2, 3)]),
    MCase("gru_2l_bi_h0", lambda lib, dt: lib.nn.GRU(3, 4, 2, bidirectional=True, dtype=dt),
          [(4, 2, 3), (4, 2, 4)]),
    MCase("gru_nobias_unbatched", lambda lib, dt: lib.nn.GRU(3, 4, bias=False, dtype=dt),
          [(5, 3)]),
    MCase("rnn_dropout_eval", lambda lib, dt: lib.nn.RNN(3, 4, 2, dropout=0.5, dtype=dt),
          [(3, 2, 3)]),
    MCase("rnncell", lambda lib, dt: lib.nn.RNNCell(3, 4, dtype=dt), [(2, 3), (2, 4)]),
    MCase("rnncell_relu_noh", lambda lib, dt: lib.nn.RNNCell(3, 4, nonlinearity="relu",
                                                            dtype=dt), [(2, 3)]),
    MCase("rnncell_1d", lambda lib, dt: lib.nn.RNNCell(3, 4, bias=False, dtype=dt),
          [(3,), (4,)]),
    MCase("lstmcell", lambda lib, dt: lib.nn.LSTMCell(3, 4, dtype=dt), [(2, 3), (2, 4), (2, 4)],
          call=lambda m, lib, x, h, c: m(x, (h, c))),
    MCase("lstmcell_1d_noh", lambda lib, dt: lib.nn.LSTMCell(3, 4, dtype=dt), [(3,)]),
    MCase("grucell", lambda lib, dt: lib.nn.GRUCell(3, 4, dtype=dt), [(2, 3), (2, 4)]),
    MCase("grucell_1d", lambda lib, dt: lib.nn.GRUCell(3, 4, bias=False, dtype=dt),
          [(3,), (4,)]),
    # attention
    MCase("mha_self", lambda lib, dt: lib.nn.MultiheadAttention(4, 2, dtype=dt), [(5, 2, 4)],
          call=lambda m, lib, x: m(x, x, x)),
    MCase("mha_kv", lambda lib, dt: lib.nn.MultiheadAttention(4, 2, dtype=dt),
          [(3, 2, 4), (5, 2, 4), (5, 2, 4)],
          call=lambda m, lib, q, k, v: m(q, k, v, average_attn_weights=False)),
    MCase("mha_kdim_vdim_bias_kv", lambda lib, dt: lib.nn.MultiheadAttention(
        4, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True, dtype=dt),
        [(3, 2, 4), (5, 2, 3), (5, 2, 5)]),
    MCase("mha_batch_first_kpm", lambda lib, dt: lib.nn.MultiheadAttention(
        4, 1, batch_first=True, dtype=dt), [(2, 5, 4)],
        call=lambda m, lib, x: m(x, x, x, key_padding_mask=_bool_mask(lib, KPM))),
    MCase("mha_float_mask_noweights", lambda lib, dt: lib.nn.MultiheadAttention(
        4, 2, bias=False, dtype=dt), [(5, 2, 4)],
        call=lambda m, lib, x: m(x, x, x, attn_mask=_float_mask(lib, CAUSAL, x.dtype),
                                 need_weights=False)),
    MCase("mha_bool_mask_kpm", lambda lib, dt: lib.nn.MultiheadAttention(4, 2, dtype=dt),
          [(5, 2, 4)],
          call=lambda m, lib, x: m(x, x, x, attn_mask=_bool_mask(lib, np.isinf(CAUSAL)),
                                   key_padding_mask=_bool_mask(lib, [[False] * 4 + [True],
                                                                     [False] * 5]))),
    MCase("mha_causal", lambda lib, dt: lib.nn.MultiheadAttention(4, 2, dtype=dt),
          [(5, 2, 4)],
          call=lambda m, lib, x: m(x, x, x, attn_mask=_float_mask(lib, CAUSAL, x.dtype),
                                   is_causal=True, need_weights=False)),
    MCase("mha_unbatched", lambda lib, dt: lib.nn.MultiheadAttention(4, 2, dtype=dt),
          [(3, 4), (5, 4), (5, 4)]),
    # transformer layers
    MCase("encoder_layer", lambda lib, dt: lib.nn.TransformerEncoderLayer(4, 2, 6, dtype=dt),
          [(5, 2, 4)]),
    MCase("encoder_layer_norm_first_gelu_bf", lambda lib, dt: lib.nn.TransformerEncoderLayer(
        4, 2, 6, activation="gelu", norm_first=True, batch_first=True, dtype=dt), [(2, 5, 4)],
        call=lambda m, lib, x: m(x, src_key_padding_mask=_bool_mask(lib, KPM))),
    MCase("encoder_layer_module_act_mask", lambda lib, dt: lib.nn.TransformerEncoderLayer(
        4, 2, 6, activation=lib.nn.GELU(), bias=False, dtype=dt), [(5, 2, 4)],
        call=lambda m, lib, x: m(x, src_mask=_float_mask(lib, CAUSAL, x.dtype))),
    MCase("decoder_layer", lambda lib, dt: lib.nn.TransformerDecoderLayer(4, 2, 6, dtype=dt),
          [(5, 2, 4), (3, 2, 4)],
          call=lambda m, lib, t, mem: m(t, mem, tgt_mask=_float_mask(lib, CAUSAL, t.dtype))),
    MCase("decoder_layer_norm_first", lambda lib, dt: lib.nn.TransformerDecoderLayer(
        4, 2, 6, norm_first=True, batch_first=True, dtype=dt), [(2, 5, 4), (2, 5, 4)],
        call=lambda m, lib, t, mem: m(t, mem, memory_key_padding_mask=_bool_mask(lib, KPM))),
    MCase("encoder_stack", lambda lib, dt: lib.nn.TransformerEncoder(
        lib.nn.TransformerEncoderLayer(4, 2, 6, dtype=dt), 2, norm=lib.nn.LayerNorm(4, dtype=dt),
        enable_nested_tensor=False), [(5, 2, 4)]),
    MCase("decoder_stack", lambda lib, dt: lib.nn.TransformerDecoder(
        lib.nn.TransformerDecoderLayer(4, 2, 6, dtype=dt), 2), [(5, 2, 4), (3, 2, 4)]),
    MCase("transformer", lambda lib, dt: lib.nn.Transformer(
        4, 2, 1, 1, 6, dtype=dt), [(3, 2, 4), (5, 2, 4)],
        call=lambda m, lib, s, t: m(s, t, tgt_mask=lib.nn.Transformer
                                    .generate_square_subsequent_mask(5, dtype=t.dtype))),
]


def _copy_weights(ours, theirs) -> None:
    state = {k: tapegrad.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)


def _module_run(lib, case: MCase, dtype: str, module=None):
    rng = np.random.default_rng(case.seed)
    arrays = [rng.standard_normal(s) for s in case.shapes]
    dt = getattr(lib, dtype)
    if module is None:
        module = case.build(lib, dt)
    if case.eval:
        module.eval()
    xs = [lib.tensor(a, dtype=dt, requires_grad=True) for a in arrays]
    outs = _outputs(case.call(module, lib, *xs))
    grng = np.random.default_rng(case.seed + 1)
    weights = [grng.standard_normal(tuple(o.shape)) for o in outs]
    loss = sum((o * lib.tensor(w, dtype=o.dtype)).sum() for o, w in zip(outs, weights))
    loss.backward()
    return module, xs, outs, loss


MODULE_PARAMS = [pytest.param(c, id=c.name) for c in MODULE_CASES]


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MODULE_PARAMS)
def test_module_matches_torch(case: MCase, dtype: str):
    theirs = case.build(torch, getattr(torch, dtype))
    ours = case.build(tapegrad, getattr(tapegrad, dtype))
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    _copy_weights(ours, theirs)
    _, xs_t, outs_t, _ = _module_run(torch, case, dtype, theirs)
    _, xs_o, outs_o, _ = _module_run(tapegrad, case, dtype, ours)
    rtol, atol = (1e-9, 1e-11) if dtype == "float64" else (case.rtol32, case.atol32)
    assert len(outs_t) == len(outs_o)
    for a, b in zip(outs_o, outs_t):
        assert tuple(a.shape) == tuple(b.shape)
        assert a.dtype.name == str(b.dtype).split(".")[1]
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)
    for a, b in zip(xs_o, xs_t):
        np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=rtol, atol=atol)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if q.grad is not None:
            np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=rtol, atol=atol,
                                       err_msg=name)


def _central_difference(loss_fn, t, index, eps=1e-6) -> float:
    base = _np(t)
    values = []
    for step in (eps, -eps):
        shifted = base.copy()
        shifted[index] += step
        with tapegrad.no_grad():
            t.copy_(tapegrad.tensor(shifted, dtype=t.dtype))
        values.append(float(loss_fn()))
    with tapegrad.no_grad():
        t.copy_(tapegrad.tensor(base, dtype=t.dtype))
    return (values[0] - values[1]) / (2 * eps)


@pytest.mark.parametrize("case", MODULE_PARAMS)
def test_module_grad_central_differences(case: MCase):
    module, xs, outs, _ = _module_run(tapegrad, case, "float64")
    grng = np.random.default_rng(case.seed + 1)
    weights = [grng.standard_normal(tuple(o.shape)) for o in outs]

    def loss_fn():
        with tapegrad.no_grad():
            new = _outputs(case.call(module, tapegrad, *xs))
            return sum(float((_np(o) * w).sum()) for o, w in zip(new, weights))

    rng = np.random.default_rng(7)
    for t in [*xs, *module.parameters()]:
        if t.grad is None:
            continue
        analytic = _np(t.grad)
        for _ in range(case.fd_points):
            index = tuple(int(rng.integers(s)) for s in t.shape)
            numeric = _central_difference(loss_fn, t, index)
            assert abs(numeric - analytic[index]) <= 1e-6 + 1e-5 * abs(numeric), \
                (index, numeric, analytic[index])


# ---------------------------------------------------------------- functional rows

@dataclass
class FCase:
    name: str
    fn: Callable  # fn(lib, *tensors) -> tensor
    shapes: list
    seed: int = 0
    int_args: dict = field(default_factory=dict)
    rtol32: float = 1e-5
    atol32: float = 1e-6


def _f(lib):
    return F if lib is tapegrad else torch.nn.functional


def _bag_input(lib, values):
    return lib.tensor(np.asarray(values, dtype=np.int64))


FUNC_CASES = [
    FCase("sdpa_3d", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(q, k, v),
          [(2, 3, 4), (2, 5, 4), (2, 5, 6)]),
    FCase("sdpa_4d_causal", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, is_causal=True), [(2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3)]),
    FCase("sdpa_2d_scale", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, scale=0.3), [(3, 4), (5, 4), (5, 2)]),
    FCase("sdpa_bool_mask", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, attn_mask=_bool_mask(lib, ~np.isinf(CAUSAL))), [(2, 5, 3), (2, 5, 3),
                                                                 (2, 5, 3)]),
    FCase("sdpa_float_mask", lambda lib, q, k, v, m: _f(lib).scaled_dot_product_attention(
        q, k, v, attn_mask=m), [(2, 1, 3, 4), (2, 1, 5, 4), (2, 1, 5, 4), (3, 5)]),
    FCase("sdpa_bool_mask_dead_row", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, attn_mask=_bool_mask(lib, [[1, 0, 1], [0, 0, 0]])), [(2, 2, 3), (2, 3, 3),
                                                                    (2, 3, 2)]),
    FCase("sdpa_float_mask_dead_row", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, attn_mask=_float_mask(lib, [[0, -np.inf], [-np.inf, -np.inf]], q.dtype)),
        [(1, 2, 3), (1, 2, 3), (1, 2, 3)]),
    FCase("sdpa_gqa", lambda lib, q, k, v: _f(lib).scaled_dot_product_attention(
        q, k, v, enable_gqa=True), [(1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 2)]),
    FCase("bag_sum_offsets", lambda lib, w: _f(lib).embedding_bag(
        _bag_input(lib, [1, 2, 4, 5, 4, 3, 2, 9]), w, _bag_input(lib, [0, 4]), mode="sum"),
        [(10, 3)]),
    FCase("bag_mean_2d", lambda lib, w: _f(lib).embedding_bag(
        _bag_input(lib, [[1, 2, 4], [4, 3, 2]]), w), [(10, 3)]),
    FCase("bag_max_empty_bag", lambda lib, w: _f(lib).embedding_bag(
        _bag_input(lib, [1, 2, 4, 5, 4, 3]), w, _bag_input(lib, [0, 2, 2, 5]), mode="max"),
        [(10, 3)]),
    FCase("bag_sum_weights", lambda lib, w, p: _f(lib).embedding_bag(
        _bag_input(lib, [1, 2, 4, 5, 4, 3]), w, _bag_input(lib, [0, 3]), mode="sum",
        per_sample_weights=p), [(10, 3), (6,)]),
    FCase("bag_mean_padding_last_offset", lambda lib, w: _f(lib).embedding_bag(
        _bag_input(lib, [1, 0, 4, 0, 0, 3]), w, _bag_input(lib, [0, 2, 3, 5, 6]),
        mode="mean", padding_idx=0, include_last_offset=True), [(10, 3)]),
    FCase("bag_max_padding_2d", lambda lib, w: _f(lib).embedding_bag(
        _bag_input(lib, [[1, 0], [0, 0], [2, 3]]), w, mode="max", padding_idx=0), [(10, 1)]),
    FCase("mha_forward_functional", lambda lib, q, w, b, ow: _f(lib).multi_head_attention_forward(
        q, q, q, 4, 2, w, b, None, None, False, 0.0, ow, None, training=False)[0],
        [(3, 2, 4), (12, 4), (12,), (4, 4)]),
]
FUNC_PARAMS = [pytest.param(c, id=c.name) for c in FUNC_CASES]


def _func_run(lib, case: FCase, dtype: str):
    rng = np.random.default_rng(case.seed)
    dt = getattr(lib, dtype)
    xs = [lib.tensor(rng.standard_normal(s), dtype=dt, requires_grad=True) for s in case.shapes]
    out = case.fn(lib, *xs)
    r = np.random.default_rng(case.seed + 1).standard_normal(tuple(out.shape))
    (out * lib.tensor(r, dtype=out.dtype)).sum().backward()
    return xs, out


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", FUNC_PARAMS)
def test_functional_matches_torch(case: FCase, dtype: str):
    xs_t, out_t = _func_run(torch, case, dtype)
    xs_o, out_o = _func_run(tapegrad, case, dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (case.rtol32, case.atol32)
    assert tuple(out_o.shape) == tuple(out_t.shape)
    assert out_o.dtype.name == str(out_t.dtype).split(".")[1]
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=rtol, atol=atol)
    for a, b in zip(xs_o, xs_t):
        assert (a.grad is None) == (b.grad is None)
        if b.grad is not None:
            np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", FUNC_PARAMS)
def test_functional_gradcheck(case: FCase):
    rng = np.random.default_rng(case.seed)
    xs = [tapegrad.tensor(rng.standard_normal(s), dtype=tapegrad.float64, requires_grad=True)
          for s in case.shapes]
    assert gradcheck(lambda *ts: case.fn(tapegrad, *ts), xs)


@needs_torch
def test_embedding_bag_grad_fn_name():
    for lib in (tapegrad, torch):
        w = lib.ones(4, 2, requires_grad=True)
        out = _f(lib).embedding_bag(lib.tensor([[1, 2]]), w, mode="max")
        assert out.grad_fn.name() == "EmbeddingBagBackward0"


@needs_torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "sdpa"])
def test_double_backward_matches_torch(kind):
    """Gradients of a gradient norm (create_graph=True) equal PyTorch's."""
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((3, 2, 3)) for _ in range(3)]
    results, theirs = [], None
    for lib in (torch, tapegrad):
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        if kind == "sdpa":
            params = xs[1:]
            out = _f(lib).scaled_dot_product_attention(xs[0], xs[1], xs[2], is_causal=True)
        else:
            module = getattr(lib.nn, kind)(3, 3, dtype=lib.float64)
            if theirs is None:
                theirs = module
            else:
                _copy_weights(module, theirs)
            params = list(module.parameters())
            out = module(xs[0])[0]
        (g,) = lib.autograd.grad((out * out).sum(), xs[0], create_graph=True)
        (g * g).sum().backward()
        results.append([_np(xs[0].grad)] + [_np(p.grad) for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- errors

def _raises(lib, fn):
    with pytest.raises(Exception) as info:
        fn(lib)
    # dtypes and the tensor class print under the library's own name
    text = str(info.value).replace("tapegrad._tensor.Tensor", "torch.Tensor")
    return type(info.value), text.replace("tapegrad.", "torch.")


ERROR_CASES = [
    ("rnn_4d_input", lambda lib: lib.nn.RNN(3, 4)(lib.zeros(1, 2, 3, 3))),
    ("lstm_1d_input", lambda lib: lib.nn.LSTM(3, 4)(lib.zeros(3))),
    ("gru_bad_features", lambda lib: lib.nn.GRU(3, 4)(lib.zeros(2, 2, 5))),
    ("rnn_bad_hidden", lambda lib: lib.nn.RNN(3, 4)(lib.zeros(2, 2, 3), lib.zeros(2, 2, 4))),
    ("rnn_hidden_rank", lambda lib: lib.nn.RNN(3, 4)(lib.zeros(2, 2, 3), lib.zeros(2, 4))),
    ("lstm_bad_c", lambda lib: lib.nn.LSTM(3, 4)(lib.zeros(2, 2, 3),
                                                 (lib.zeros(1, 2, 4), lib.zeros(1, 3, 4)))),
    ("rnn_dtype", lambda lib: lib.nn.RNN(3, 4)(lib.zeros(2, 2, 3, dtype=lib.float64))),
    ("rnn_nonlinearity", lambda lib: lib.nn.RNN(3, 4, nonlinearity="gelu")),
    ("gru_proj", lambda lib: lib.nn.GRU(3, 4, proj_size=2)),
    ("lstm_proj_big", lambda lib: lib.nn.LSTM(3, 4, proj_size=4)),
    ("rnn_dropout_range", lambda lib: lib.nn.RNN(3, 4, dropout=1.5)),
    ("rnn_zero_hidden", lambda lib: lib.nn.RNN(3, 0)),
    ("grucell_3d", lambda lib: lib.nn.GRUCell(3, 4)(lib.zeros(1, 2, 3))),
    ("lstmcell_hx_3d", lambda lib: lib.nn.LSTMCell(3, 4)(lib.zeros(2, 3),
                                                         (lib.zeros(1, 2, 4), lib.zeros(2, 4)))),
    ("mha_heads", lambda lib: lib.nn.MultiheadAttention(5, 2)),
    ("mha_zero", lambda lib: lib.nn.MultiheadAttention(0, 2)),
    ("mha_bad_mask", lambda lib: lib.nn.MultiheadAttention(4, 2)(
        lib.zeros(3, 2, 4), lib.zeros(3, 2, 4), lib.zeros(3, 2, 4), attn_mask=lib.zeros(2, 3))),
    ("mha_causal_nomask", lambda lib: lib.nn.MultiheadAttention(4, 2)(
        lib.zeros(3, 2, 4), lib.zeros(3, 2, 4), lib.zeros(3, 2, 4), is_causal=True)),
    ("mha_4d", lambda lib: lib.nn.MultiheadAttention(4, 2)(
        lib.zeros(1, 3, 2, 4), lib.zeros(1, 3, 2, 4), lib.zeros(1, 3, 2, 4))),
    ("encoder_activation", lambda lib: lib.nn.TransformerEncoderLayer(4, 2, activation="tanh")),
    ("transformer_batch", lambda lib: lib.nn.Transformer(4, 2, 1, 1, 6)(
        lib.zeros(3, 2, 4), lib.zeros(3, 1, 4))),
    ("transformer_features", lambda lib: lib.nn.Transformer(4, 2, 1, 1, 6)(
        lib.zeros(3, 2, 4), lib.zeros(3, 2, 5))),
    ("bag_mode", lambda lib: (F if lib is tapegrad else torch.nn.functional).embedding_bag(
        lib.tensor([[1, 2]]), lib.zeros(3, 2), mode="min")),
    ("bag_offsets_2d", lambda lib: (F if lib is tapegrad else torch.nn.functional)
     .embedding_bag(lib.tensor([[1, 2]]), lib.zeros(3, 2), lib.tensor([0]))),
    ("bag_no_offsets", lambda lib: (F if lib is tapegrad else torch.nn.functional)
     .embedding_bag(lib.tensor([1, 2]), lib.zeros(3, 2))),
    ("bag_psw_mean", lambda lib: (F if lib is tapegrad else torch.nn.functional)
     .embedding_bag(lib.tensor([[1, 2]]), lib.zeros(3, 2), per_sample_weights=lib.ones(1, 2))),
    ("bag_weight_1d", lambda lib: (F if lib is tapegrad else torch.nn.functional)
     .embedding_bag(lib.tensor([[1, 2]]), lib.zeros(3))),
    ("bag_padding_idx", lambda lib: lib.nn.EmbeddingBag(3, 2, padding_idx=3)),
]


@needs_torch
@pytest.mark.parametrize("name,fn", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_match_torch(name, fn):
    assert _raises(tapegrad, fn) == _raises(torch, fn)


# ---------------------------------------------------------------- the rest

def test_rnn_parameter_names_and_init():
    lstm = nn.LSTM(3, 4, 2, bidirectional=True, proj_size=2)
    names = [n for n, _ in lstm.named_parameters()]
    assert names[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                         "weight_hr_l0"]
    assert names[5] == "weight_ih_l0_reverse" and len(names) == 20
    assert tuple(lstm.weight_ih_l1.shape) == (16, 4)
    assert tuple(lstm.weight_hh_l0.shape) == (16, 2)
    bound = 1 / np.sqrt(4)
    assert all(np.abs(_np(p)).max() <= bound for p in lstm.parameters())
    assert len(lstm.all_weights) == 4


def test_rnn_dropout_only_in_training():
    rnn = nn.GRU(3, 4, 2, dropout=0.9)
    x = tapegrad.randn(6, 2, 3)
    tapegrad.manual_seed(0)
    a = rnn(x)[0]
    rnn.eval()
    b, c = rnn(x)[0], rnn(x)[0]
    np.testing.assert_array_equal(_np(b), _np(c))
    assert not np.allclose(_np(a), _np(b))


def test_parameter_list_registers_parameters():
    plist = nn.ParameterList([nn.Parameter(tapegrad.ones(2)), tapegrad.zeros(3)])
    plist.append(tapegrad.ones(1, 2))
    assert len(plist) == 3
    assert all(isinstance(p, nn.Parameter) for p in plist)
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    assert list(plist.state_dict()) == ["0", "1", "2"]
    assert plist[-1] is plist[2]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([tapegrad.ones(2), tapegrad.ones(2)])
            self.d = nn.ParameterDict({"b": tapegrad.ones(2), "a": tapegrad.ones(2)})

        def forward(self, x):
            return (x * self.ws[0] * self.ws[1] * self.d["a"] + self.d["b"]).sum()

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["ws.0", "ws.1", "d.a", "d.b"]
    net(tapegrad.ones(2) * 2).backward()
    np.testing.assert_array_equal(_np(net.ws[0].grad), [2.0, 2.0])
    np.testing.assert_array_equal(_np(net.d["b"].grad), [1.0, 1.0])


def test_parameter_dict_behaves_as_a_dict():
    pdict = nn.ParameterDict({"x": tapegrad.ones(2)})
    pdict["y"] = nn.Parameter(tapegrad.zeros(1))
    assert list(pdict.keys()) == ["x", "y"] and "x" in pdict and len(pdict) == 2
    assert isinstance(pdict["x"], nn.Parameter)
    popped = pdict.pop("x")
    assert tuple(popped.shape) == (2,) and list(pdict) == ["y"]
    assert [n for n, _ in pdict.named_parameters()] == ["y"]


@needs_torch
def test_container_reprs_match_torch():
    def build(lib):
        plist = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)),
                                      lib.nn.Parameter(lib.ones(2, 3, dtype=lib.float64))])
        pdict = lib.nn.ParameterDict({"b": lib.ones(3), "a": lib.ones(1)})
        bags = [lib.nn.EmbeddingBag(5, 3), lib.nn.EmbeddingBag(5, 3, mode="max", padding_idx=-1,
                                                               max_norm=1.0)]
        return [plist, pdict, *bags]
    for ours, theirs in zip(build(tapegrad), build(torch)):
        assert repr(ours).replace("tapegrad.", "torch.") == repr(theirs)


@needs_torch
def test_embedding_bag_module_matches_torch():
    theirs = torch.nn.EmbeddingBag(6, 3, mode="sum", padding_idx=2).double()
    ours = nn.EmbeddingBag(6, 3, mode="sum", padding_idx=2, dtype=tapegrad.float64)
    assert np.all(_np(ours.weight)[2] == 0)
    _copy_weights(ours, theirs)
    idx = [0, 2, 5, 1, 2]
    out_t = theirs(torch.tensor(idx), torch.tensor([0, 3]))
    out_o = ours(tapegrad.tensor(idx), tapegrad.tensor([0, 3]))
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=1e-12)
    out_t.sum().backward()
    out_o.sum().backward()
    np.testing.assert_allclose(_np(ours.weight.grad), _np(theirs.weight.grad), rtol=1e-12)


def test_square_subsequent_mask():
    mask = _np(nn.Transformer.generate_square_subsequent_mask(3))
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])


def test_transformer_defaults():
    model = nn.Transformer()
    assert model.d_model == 512 and model.nhead == 8
    assert len(model.encoder.layers) == 6 and len(model.decoder.layers) == 6
    assert tuple(model.encoder.layers[0].linear1.weight.shape) == (2048, 512)
    assert model.encoder.layers[0].dropout.p == 0.1


@needs_torch
def test_embedding_bag_max_norm_matches_torch():
    array = np.random.default_rng(5).standard_normal((6, 3))
    results = []
    for lib in (torch, tapegrad):
        w = lib.tensor(array, requires_grad=True)
        out = _f(lib).embedding_bag(lib.tensor([1, 2, 4, 4]), w, lib.tensor([0, 1]),
                                    max_norm=0.7, mode="sum")
        out.sum().backward()
        results.append((_np(out), _np(w), _np(w.grad)))
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
