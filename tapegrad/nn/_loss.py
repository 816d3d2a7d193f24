"""Loss functions of ``tapegrad.nn.functional``, following PyTorch's definitions.

Where PyTorch computes a loss in one ATen kernel (mse, smooth L1, Huber, NLL,
binary cross entropy) the loss is a ``composite`` carrying that kernel's node
name; where PyTorch composes ops in Python or C++ (L1, weighted losses,
probability targets, label smoothing) the same composition is written here, so
the graphs' node names agree too.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import _dtype as D
from .._library import composite, log_softmax, where
from .._tensor import Tensor, broadcast_shapes, tensor
from ..autograd.grad_mode import is_grad_enabled

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's ``_Reduction.legacy_get_string`` for the deprecated arguments."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  "reduction='mean' instead.", stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _check(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _broadcast(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Warn as PyTorch does when shapes differ, then broadcast both (outside the loss node)."""
    if target.shape != input.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)
        shape = broadcast_shapes(input.shape, target.shape)
        return input.expand(shape), target.expand(shape)
    return input, target


def _weighted(errors: Tensor, weight: Tensor, input: Tensor, reduction: str) -> Tensor:
    """The weighted forms of mse_loss and l1_loss (PyTorch computes them in Python)."""
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    weighted = errors * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean":
        return weighted.sum() / weight.sum()
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', "
                     "'sum'.")


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    x, t = _broadcast(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if weight is not None:
        d = x - t
        return _weighted(d * d, weight, input, reduction)
    _check(reduction)
    with composite("MseLossBackward0", (x, t)) as c:
        d = x - t
        return c.output(_reduce(d * d, reduction))


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    x, t = _broadcast(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted((x - t).abs(), weight, input, reduction)
    return _reduce((x - t).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    x, t = _broadcast(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if beta == 0.0:
        return _reduce((x - t).abs(), reduction)
    _check(reduction)
    with composite("SmoothL1LossBackward0", (x, t)) as c:
        d = x - t
        z = d.abs()
        loss = where(z < beta, 0.5 * d * d / beta, z - 0.5 * beta)
        return c.output(_reduce(loss, reduction))


def _huber(x: Tensor, t: Tensor, delta: float) -> Tensor:
    d = x - t
    z = d.abs()
    return where(z < delta, 0.5 * d * d, delta * (z - 0.5 * delta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    x, t = _broadcast(input, target)
    if weight is None:
        _check(reduction)
        with composite("HuberLossBackward0", (x, t)) as c:
            return c.output(_reduce(_huber(x, t, delta), reduction))
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    with composite("HuberLossBackward0", (x, t)) as c:
        unweighted = c.output(_huber(x, t, delta))
    weighted = unweighted * weight
    if reduction in ("none", "sum", "mean"):
        return _reduce(weighted, reduction)
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', "
                     "'sum'.")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``-(t log x + (1 - t) log(1 - x))`` with each log clamped at -100, as PyTorch."""
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         "size.")
    a = np.asarray(input)
    if a.size and not ((a >= 0) & (a <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    if weight is not None:
        weight = weight.expand(broadcast_shapes(target.shape, weight.shape))
    _check(reduction)
    with composite("BinaryCrossEntropyBackward0", (input, target)) as c:
        log_x = input.log().clamp(min=-100.0)
        log_1mx = (-input).log1p().clamp(min=-100.0)
        loss = (target - 1) * log_1mx - target * log_x
        edge = a * (1 - a) < a.dtype.type(_BCE_EPS)
        if edge.any():  # (input exactly 0 or 1, or within 1e-12 of them)
            loss = where(tensor(edge), _bce_edge(input, target, loss, log_x, log_1mx), loss)
        if weight is not None:
            loss = loss * weight
        return c.output(_reduce(loss, reduction))


_BCE_EPS = float(np.float32(1e-12))  # ATen's EPSILON in its backward (a float constant)


def _bce_edge(x: Tensor, t: Tensor, loss: Tensor, log_x: Tensor, log_1mx: Tensor) -> Tensor:
    """The loss where x (1 - x) < 1e-12, with PyTorch's first derivatives there: its backward
    divides x - t by max(x (1 - x), 1e-12), so at x = 0 or 1 the gradient is (x - t) * 1e12
    (0 where x = t), where the clamped logs' derivatives give 0 or 1 - t (a saturated sigmoid
    with target 1 got -1 for PyTorch's 0).  The target's derivative is the logs' difference,
    as PyTorch's.  Second and higher derivatives at these points are 0."""
    xs, ts = x.detach(), t.detach()
    return (loss.detach() + (x - xs) * ((xs - ts) / _BCE_EPS)
            + (t - ts) * (log_1mx - log_x).detach())


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """``(1 - t) x - w_p log(sigmoid(x))`` with ``w_p = 1 + (pos_weight - 1) t`` (ATen's form,
    stable for large |x| because log-sigmoid is one op)."""
    from .functional import logsigmoid

    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    _check(reduction)
    with composite("BinaryCrossEntropyWithLogitsBackward0", (input, target)) as c:
        log_sig = logsigmoid(input)
        if pos_weight is not None:
            log_sig = log_sig * ((pos_weight - 1) * target + 1)
        loss = (1 - target) * input - log_sig
        if weight is not None:
            loss = loss * weight
        return c.output(_reduce(loss, reduction))


# ---------------------------------------------------------------- class-index losses

def _targets(target: Tensor) -> np.ndarray:
    if target.dtype.is_floating_point or target.dtype is D.bool_:
        raise RuntimeError(f"expected scalar type Long but found {_short(target.dtype)}")
    return np.asarray(target).astype(np.int64, copy=False)


def _short(dt) -> str:
    return {"float32": "Float", "float64": "Double", "float16": "Half", "bool": "Bool",
            "int32": "Int"}.get(dt.name, dt.name)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """``-weight[t] * input[n, t]``, averaged over the weights of the targets kept
    (``NllLossBackward0`` for 1-d/2-d input, ``NllLoss2DBackward0`` beyond, as ATen's
    ``nll_loss_nd``: 3-d and >4-d inputs go through a 4-d view)."""
    reduction = _reduction(size_average, reduce, reduction)
    _check(reduction)
    nd = input.ndim
    if nd < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {nd})")
    if weight is not None and weight.requires_grad and is_grad_enabled():
        kernel = "nll_loss_forward" if nd <= 2 else "nll_loss2d_forward"
        raise RuntimeError(f"The function '{kernel}' is not differentiable with respect to "
                           "argument 'weight'. This input cannot have requires_grad True.")
    if nd > 1 and target.shape[:1] != input.shape[:1]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 1}).")
    if nd <= 2:
        return _nll(input, target, weight, ignore_index, reduction, "NllLossBackward0")
    if nd == 4:
        return _nll(input, target, weight, ignore_index, reduction, "NllLoss2DBackward0")
    n, c = input.shape[:2]
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise ValueError(f"Expected target size {[n, *input.shape[2:]]}, got "
                         f"{list(target.shape)}")
    rest = input.numel() // (n * c) if input.numel() else 0
    x4 = input.reshape(n, c, 1, rest)
    t3 = target.reshape(n, 1, rest)
    out = _nll(x4, t3, weight, ignore_index, reduction, "NllLoss2DBackward0")
    return out.view(n, *input.shape[2:]) if reduction == "none" else out


def _nll(input: Tensor, target: Tensor, weight, ignore_index, reduction, name) -> Tensor:
    t = _targets(target)
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    if input.ndim == 4 and tuple(t.shape) != (input.shape[0], *input.shape[2:]):
        raise RuntimeError(f"size mismatch (got input: {list(input.shape)} , target: "
                           f"{list(t.shape)}")
    keep = t != ignore_index
    every = bool(keep.all())
    safe = t if every else np.where(keep, t, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= classes):
        bad = safe[(safe < 0) | (safe >= classes)].reshape(-1)[0]
        raise IndexError(f"Target {int(bad)} is out of bounds.")
    if input.ndim == 1:
        index = (safe,)
    elif input.ndim == 2:
        index = (np.arange(safe.shape[0]), safe)
    else:
        grids = np.ogrid[tuple(slice(0, s) for s in t.shape)]
        index = (grids[0], safe, *grids[1:])
    with composite(name, (input,)) as c:
        picked = input[index]
        if weight is None and every:  # the common case: no per-element weights to record
            if reduction == "none":
                return c.output(-picked)
            total = picked.sum()
            return c.output(-total if reduction == "sum" else total / -float(t.size))
        w = np.ones(classes) if weight is None else np.asarray(weight, dtype=np.float64)
        if w.shape != (classes,):
            raise RuntimeError(f"weight tensor should be defined either for all {classes} "
                               f"classes or no classes but got weight tensor of shape: "
                               f"{list(w.shape)}")
        w = (w[safe] * keep).astype(input.dtype.np)
        loss = picked * tensor(-w, dtype=input.dtype)
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            total = float(w.sum(dtype=np.float64))
            # every target ignored: 0 / 0 is nan, and PyTorch's gradient 0 (not nan)
            loss = loss.sum() / total if total else loss.sum() * 0.0 + float("nan")
        return c.output(loss)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Class indices: ``nll_loss(log_softmax(input))``; a floating target holds class
    probabilities.  Both follow ATen's ``cross_entropy_loss`` including label smoothing."""
    reduction = _reduction(size_average, reduce, reduction)
    _check(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    if target.dtype.is_floating_point:
        if target.shape != input.shape:
            raise RuntimeError(f"Expected target size {list(input.shape)}, got "
                               f"{list(target.shape)}")
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing, class_dim)
    logp = log_softmax(input, class_dim)
    nll = nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    if label_smoothing == 0.0:
        return nll
    return _label_smoothing(logp, target, weight, ignore_index, reduction, label_smoothing,
                            class_dim, nll)


def _scaled(t: Tensor, c: float) -> Tensor:
    """``c * t`` named as ATen's multiplication by a Scalar (``MulBackward1``)."""
    with composite("MulBackward1", (t,)) as comp:
        return comp.output(t * c)


def _class_view(weight: Tensor, ndim: int, class_dim: int) -> Tensor:
    if ndim <= 1:
        return weight
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return weight.view(*shape)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing, class_dim):
    classes = input.shape[class_dim]
    logp = log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    prod = logp * target
    if weight is not None:
        prod = prod * _class_view(weight, input.ndim, class_dim)
    if reduction == "none":
        return -prod.sum(class_dim)
    total = -prod.sum()
    if reduction == "sum":
        return total
    if input.numel() == 0:
        return total * float("nan")
    with composite("DivBackward1", (total,)) as c:
        return c.output(total / (input.numel() // classes))


def _label_smoothing(logp, target, weight, ignore_index, reduction, label_smoothing, class_dim,
                     nll):
    classes = logp.shape[class_dim]
    if weight is not None:
        smooth = -(logp * _class_view(weight, logp.ndim, class_dim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    ignored = target == ignore_index
    smooth = smooth.masked_fill(ignored, 0.0)
    if reduction == "mean":
        if weight is not None:
            t = np.asarray(target)[~np.asarray(ignored)]
            denom = weight[tensor(t.reshape(-1))].sum()
        else:
            denom = (~ignored).sum()
        ret = smooth.sum() / denom
    elif reduction == "sum":
        ret = smooth.sum()
    else:
        ret = smooth
    return _scaled(nll, 1 - label_smoothing) + _scaled(ret, label_smoothing / classes)
