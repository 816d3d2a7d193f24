"""tapegrad: PyTorch's autograd API on a Wengert tape swept by a Numba interpreter.

``import tapegrad as torch`` runs PyTorch autograd code unchanged.  Each
differentiable op appends an integer-opcode record to a tape of NumPy arrays
(``tapegrad._tape``); ``backward()`` is one call into a compiled reverse sweep.
"""
from __future__ import annotations

from . import _tape, autograd, func, nn, optim
from ._dtype import bool_ as bool  # noqa: A001  (PyTorch's name)
from ._dtype import (
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from ._format import get_printoptions, set_printoptions
from ._functional import *  # noqa: E402,F401,F403
from ._tensor import (
    Generator,
    Size,
    Tensor,
    arange,
    as_tensor,
    broadcast_shapes,
    default_generator,
    dot,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    initial_seed,
    is_tensor,
    linspace,
    manual_seed,
    matmul,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    seed,
    tensor,
    zeros,
    zeros_like,
)
from ._ops_index import *  # noqa: E402,F401,F403
from ._ops_linalg import *  # noqa: E402,F401,F403
from ._ops_math import *  # noqa: E402,F401,F403
from . import linalg  # noqa: E402
from .nn.functional import (  # noqa: E402  (PyTorch has these at the top level too)
    alpha_dropout,
    avg_pool1d,
    bilinear,
    celu,
    celu_,
    channel_shuffle,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    cosine_similarity,
    dropout,
    feature_alpha_dropout,
    group_norm,
    hardshrink,
    layer_norm,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    pairwise_distance,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    rms_norm,
    rrelu,
    rrelu_,
    selu,
    selu_,
    threshold,
    threshold_,
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: E402
from .autograd.anomaly_mode import (  # noqa: E402
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_anomaly_enabled,
)
from ._trace import Trace, TraceError, TraceGuardError, compile, load_trace, trace  # noqa: E402,A004
from .autograd.grad_mode import inference_mode  # noqa: E402

float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

__version__ = "0.1.0"

_tape.check_tables()
