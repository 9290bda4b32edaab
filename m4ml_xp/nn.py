"""Course 2 project — a multilayer perceptron trained by hand-written backpropagation.

The project in two modules, gathered here: :mod:`m4ml_xp.mlp` (parameters, forward
pass, backpropagation; its docstring states the layout) and :mod:`m4ml_xp.mlp_training`
(the training loop).
"""

from __future__ import annotations

from m4ml_xp.mlp import Backprop, init_mlp, mlp_backprop, mlp_forward
from m4ml_xp.mlp_training import TrainResult, train_mlp

__all__ = ["Backprop", "TrainResult", "init_mlp", "mlp_backprop", "mlp_forward", "train_mlp"]
