"""``tapegrad.optim``: PyTorch's optimizers and learning-rate schedulers."""
from . import _more, lr_scheduler
from ._more import *  # noqa: F401,F403
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
__all__ += _more.__all__
