"""m4ml_xp — the Mathematics for Machine Learning algorithms, written once for every array library.

Every function takes its array namespace (NumPy, CuPy, JAX, PyTorch, Dask,
array-api-strict) from its inputs and returns arrays of the same library,
dtype family and device.
"""

from m4ml_xp.calculus import (
    LagrangeResult,
    RootResult,
    hessian,
    jacobian,
    lagrange_multipliers,
    newton_raphson,
    newton_step,
    sandpit_step,
)
from m4ml_xp.datasets import NISTProblem, heart_curve, heights_data, load_mnist, load_nist_strd
from m4ml_xp.errors import ConvergenceError, ConvergenceWarning, RankWarning
from m4ml_xp.linalg import (
    EigResult,
    change_of_basis,
    gram_schmidt,
    is_singular,
    power_iteration,
    reflection_matrix,
    rotation_matrix,
    row_echelon,
    scaling_matrix,
    shear_matrix,
    span_dimension,
    transform_image,
)
from m4ml_xp.lsq import (
    CurveFit,
    LinearFit,
    LMResult,
    curve_fit,
    levenberg_marquardt,
    linear_regression,
)
from m4ml_xp.nn import Backprop, TrainResult, init_mlp, mlp_backprop, mlp_forward, train_mlp
from m4ml_xp.optimize import (
    DescentPath,
    Optimizer,
    OptimizeResult,
    adam,
    apply_updates,
    gradient_descent,
    minimize,
    momentum,
    sgd,
)
from m4ml_xp.pagerank import (
    PageRankResult,
    generate_internet,
    generate_internet_edges,
    pagerank,
    pagerank_edges,
)

__version__ = "0.1.0"

__all__ = [
    "Backprop",
    "ConvergenceError",
    "ConvergenceWarning",
    "CurveFit",
    "DescentPath",
    "EigResult",
    "LMResult",
    "LagrangeResult",
    "LinearFit",
    "NISTProblem",
    "OptimizeResult",
    "Optimizer",
    "PageRankResult",
    "RankWarning",
    "RootResult",
    "TrainResult",
    "adam",
    "apply_updates",
    "change_of_basis",
    "curve_fit",
    "generate_internet",
    "generate_internet_edges",
    "gradient_descent",
    "gram_schmidt",
    "heart_curve",
    "heights_data",
    "hessian",
    "init_mlp",
    "is_singular",
    "jacobian",
    "lagrange_multipliers",
    "levenberg_marquardt",
    "linear_regression",
    "load_mnist",
    "load_nist_strd",
    "minimize",
    "mlp_backprop",
    "mlp_forward",
    "momentum",
    "newton_raphson",
    "newton_step",
    "pagerank",
    "pagerank_edges",
    "power_iteration",
    "reflection_matrix",
    "rotation_matrix",
    "row_echelon",
    "sandpit_step",
    "scaling_matrix",
    "sgd",
    "shear_matrix",
    "span_dimension",
    "train_mlp",
    "transform_image",
]
