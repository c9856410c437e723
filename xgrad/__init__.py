"""xgrad: the numerical differentiation and gradient descent of *Deep Learning
from Scratch*, chapter 4, as software that runs on any array-API backend.

The same code runs on NumPy, CuPy (CUDA GPUs), PyTorch, JAX and
array-api-strict arrays. Start with :func:`train`, or with the book's names:
:func:`numerical_diff`, :func:`numerical_gradient`, :func:`gradient_descent`,
:class:`TwoLayerNet` and :func:`load_mnist`.
"""

from xgrad._datasets.mnist import DatasetError, DatasetNotFoundError, load_mnist
from xgrad._infra.backend import (
    BACKENDS,
    Backend,
    BackendUnavailableError,
    namespace_of,
    resolve_backend,
)
from xgrad._infra.files import FileFormatError
from xgrad._infra.host import to_numpy
from xgrad._infra.threads import blas_threads, thread_limits
from xgrad._net.boundary import LabelsNotProbabilitiesWarning
from xgrad._net.check import GradientCheck, gradient_check
from xgrad._net.directional import DirectionalCheck, directional_check
from xgrad._net.functions import cross_entropy_error, log_softmax, relu, sigmoid, softmax
from xgrad._net.net import TwoLayerNet, network_numerical_gradient
from xgrad._numerics.derivative import DerivativeResult, derivative
from xgrad._numerics.descent import DescentDivergedError, DivergenceError, gradient_descent
from xgrad._numerics.diff import numerical_diff, tangent_line
from xgrad._numerics.gradcheck import GradientReport, check_gradient
from xgrad._numerics.gradient import directional_derivative, numerical_gradient
from xgrad._numerics.hesscheck import check_hessian
from xgrad._numerics.jaccheck import check_jacobian
from xgrad._numerics.jacobian import hessian, jacobian
from xgrad._sweep.sweep import SweepResult, SweepRun, sweep
from xgrad._train.checkpoint import CheckpointError
from xgrad._train.errors import TrainingDivergedError
from xgrad._train.lrcurve import LRFindResult
from xgrad._train.lrfind import lr_find
from xgrad._train.record import History
from xgrad._train.train import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "CheckpointError",
    "DatasetError",
    "DatasetNotFoundError",
    "DerivativeResult",
    "DescentDivergedError",
    "DirectionalCheck",
    "DivergenceError",
    "FileFormatError",
    "GradientCheck",
    "GradientReport",
    "History",
    "LRFindResult",
    "LabelsNotProbabilitiesWarning",
    "SweepResult",
    "SweepRun",
    "TrainResult",
    "TrainingDivergedError",
    "TwoLayerNet",
    "__version__",
    "blas_threads",
    "check_gradient",
    "check_hessian",
    "check_jacobian",
    "cross_entropy_error",
    "derivative",
    "directional_check",
    "directional_derivative",
    "gradient_check",
    "gradient_descent",
    "hessian",
    "jacobian",
    "load_mnist",
    "log_softmax",
    "lr_find",
    "namespace_of",
    "network_numerical_gradient",
    "numerical_diff",
    "numerical_gradient",
    "relu",
    "resolve_backend",
    "sigmoid",
    "softmax",
    "sweep",
    "tangent_line",
    "thread_limits",
    "to_numpy",
    "train",
]
