"""Functional forms of attention and bags of embeddings: ``scaled_dot_product_attention``,
``multi_head_attention_forward`` and ``embedding_bag``.

All three are compositions of differentiable primitives (matmul, softmax, masked_fill,
index_add...), so their gradients, including double backward, come from the tape.
"""
from __future__ import annotations

import math

import numpy as np

import tapegrad as _t

from .. import _dtype as D
from .._library import composite
from .._tensor import Tensor, tensor
from .functional import dropout, linear, pad, softmax

__all__ = ["embedding_bag", "multi_head_attention_forward", "scaled_dot_product_attention"]


# ---------------------------------------------------------------- attention

def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` over the last two dims; a bool ``attn_mask`` keeps
    the positions that are True, a float one is added to the scores."""
    L, S = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        repeats = query.shape[-3] // key.shape[-3]
        key = key.repeat_interleave(repeats, dim=-3)
        value = value.repeat_interleave(repeats, dim=-3)
    scores = _t.matmul(query, key.transpose(-2, -1)) * scale
    # which positions are masked out (True) and which rows lose every position: PyTorch's CPU
    # kernel gives those rows zero weights (and zero gradients) where a plain softmax gives NaN
    masked = np.zeros((L, S), dtype=bool)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be "
                               "set when is_causal=True")
        masked = ~np.tril(np.ones((L, S), dtype=bool))
        scores = scores.masked_fill(tensor(masked), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == D.bool_:
            masked = masked | ~np.asarray(attn_mask)
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            masked = masked | np.isneginf(np.asarray(attn_mask.detach()))
            scores = scores + attn_mask
    dead = masked.all(axis=-1, keepdims=True)
    if dead.any():
        dead_rows = tensor(np.broadcast_to(dead, masked.shape).copy())
        scores = scores.masked_fill(dead_rows, 0.0)
        weights = softmax(scores, dim=-1).masked_fill(dead_rows, 0.0)
    else:
        weights = softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return _t.matmul(weights, value)


def _canonical_mask(mask: Tensor | None, name: str, target_type) -> Tensor | None:
    """A bool mask (True = masked out) as a float one with -inf; a float mask as is."""
    if mask is None:
        return None
    if mask.dtype == D.bool_:
        return _t.zeros(*mask.shape, dtype=target_type).masked_fill(mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor,
                                 embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None,
                                 bias_k: Tensor | None, bias_v: Tensor | None,
                                 add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                                 training: bool = True, key_padding_mask: Tensor | None = None,
                                 need_weights: bool = True, attn_mask: Tensor | None = None,
                                 use_separate_proj_weight: bool = False,
                                 q_proj_weight: Tensor | None = None,
                                 k_proj_weight: Tensor | None = None,
                                 v_proj_weight: Tensor | None = None,
                                 static_k: Tensor | None = None, static_v: Tensor | None = None,
                                 average_attn_weights: bool = True, is_causal: bool = False):
    """PyTorch's ``multi_head_attention_forward``, step for step, with (L, N, E) inputs (or
    unbatched (L, E)); returns ``(attn_output, attn_weights or None)``."""
    if query.ndim not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received "
                             f"{query.ndim}-D query tensor")
    is_batched = query.ndim == 3
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", query.dtype)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but "
                             f"got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {key.shape[:2]} do not match "
                                 f"value's {value.shape[:2]}")
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias.chunk(3)
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)
    else:
        if tuple(key.shape) != tuple(value.shape):
            raise AssertionError(f"key shape {key.shape} does not match value shape "
                                 f"{value.shape}")
        w_q, w_k, w_v = in_proj_weight.chunk(3)
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias.chunk(3)
        q = linear(query, w_q, b_q)
        k = linear(key, w_k, b_k)
        v = linear(value, w_v, b_v)
    src_len = key.shape[0]
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(tgt_len, src_len)}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but "
                                   f"should be {(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = _t.cat([k, bias_k.repeat(1, bsz, 1)])
        v = _t.cat([v, bias_v.repeat(1, bsz, 1)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = (k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
         if static_k is None else static_k)
    v = (v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
         if static_v is None else static_v)
    if add_zero_attn:
        k = _t.cat([k, _t.zeros(bsz * num_heads, 1, head_dim, dtype=k.dtype)], dim=1)
        v = _t.cat([v, _t.zeros(bsz * num_heads, 1, head_dim, dtype=v.dtype)], dim=1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(f"expecting key_padding_mask shape of {(bsz, src_len)}, but "
                                 f"got {key_padding_mask.shape}")
        key_padding_mask = (key_padding_mask.reshape(bsz, 1, 1, src_len)
                            .expand(-1, num_heads, -1, -1).reshape(bsz * num_heads, 1, src_len))
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
    if not training:
        dropout_p = 0.0
    if need_weights:
        q_scaled = q * math.sqrt(1.0 / float(head_dim))
        scores = _t.bmm(q_scaled, k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = softmax(scores, dim=-1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = _t.bmm(weights, v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not is_batched:
            out, weights = out.squeeze(1), weights.squeeze(0)
        return out, weights
    if attn_mask is not None:
        if attn_mask.shape[0] == 1 and attn_mask.ndim == 3:
            attn_mask = attn_mask.unsqueeze(0)
        else:
            attn_mask = attn_mask.reshape(bsz, num_heads, -1, src_len)
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not is_batched:
        out = out.squeeze(1)
    return out, None


# ---------------------------------------------------------------- embedding bags

def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2.0,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of ``weight`` rows: bags are the rows of a 2-d ``input``
    or the slices of a 1-d ``input`` that ``offsets`` starts; ``padding_idx`` entries are left
    out of their bag (an empty bag gives zeros)."""
    from .functional import _index_array, _renorm
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is "
                         f"not None, then it must have the same shape as the input "
                         f"({input.shape})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension "
                         f"{weight.ndim}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("tapegrad: embedding_bag(scale_grad_by_freq=True) and sparse "
                                  "gradients are not supported")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences. However, found "
                             f"offsets of type {type(offsets)}")
        bags, length = input.shape
        offsets_np = np.arange(0, bags * length, length, dtype=np.int64)
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        offsets_np = np.asarray(offsets).astype(np.int64)
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' "
                                  f"(got mode='{mode}'). Please open a feature request on "
                                  f"GitHub.")
    idx = _index_array(input, "embedding_bag")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("padding_idx must be within the number of embeddings")
        padding_idx %= n
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _renorm(weight, idx, max_norm, norm_type)
    if include_last_offset:
        starts, ends = offsets_np[:-1], offsets_np[1:]
    else:
        starts = offsets_np
        ends = np.append(offsets_np[1:], idx.size)
    num_bags = starts.size
    bag_of = np.repeat(np.arange(num_bags), np.maximum(ends - starts, 0))
    positions = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]
                               or [np.zeros(0, np.int64)]).astype(np.int64)
    keep = idx[positions] != padding_idx if padding_idx is not None else \
        np.ones(positions.size, bool)
    positions, bag_of = positions[keep], bag_of[keep]
    with composite("EmbeddingBagBackward0", (weight, per_sample_weights)) as c:
        return c.output(_bags(weight, idx, positions, bag_of, num_bags, mode,
                              per_sample_weights))


def _bags(weight: Tensor, idx: np.ndarray, positions: np.ndarray, bag_of: np.ndarray,
          num_bags: int, mode: str, per_sample_weights: Tensor | None) -> Tensor:
    """Reduces the rows ``weight[idx[positions]]`` into bag ``bag_of`` of each."""
    rows = weight[tensor(idx[positions])]
    if per_sample_weights is not None:
        rows = rows * per_sample_weights[tensor(positions)].unsqueeze(1)
    bag_index = tensor(bag_of)
    out = _t.zeros(num_bags, weight.shape[1], dtype=weight.dtype)
    if mode == "max":
        # an empty bag keeps out's zeros, as PyTorch's
        return out.scatter_reduce(0, bag_index.unsqueeze(1).expand(-1, weight.shape[1]), rows,
                                  "amax", include_self=False)
    out = out.index_add(0, bag_index, rows)
    if mode == "mean":
        counts = np.bincount(bag_of, minlength=num_bags).astype(weight.dtype.np)
        out = out / tensor(np.maximum(counts, 1)[:, None], dtype=weight.dtype)
    return out
