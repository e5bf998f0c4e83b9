"""Every private Keras API tfviz relies on, in one place.

Keras 3 has no public way to walk a Functional model's graph of operations, to find the
operation that produced a symbolic tensor, or to name the classes of ``keras.ops`` calls.
tfviz needs all three (guided backprop, DeepLIFT, receptive fields, incremental occlusion,
feature taps, the final softmax). They are reached only through the functions below;
``tests/test_keras_internals.py`` exercises each of them on a small model and fails
naming the API when a Keras upgrade changes it.

APIs used: ``keras.src.models.functional.Functional``, ``Functional._run_through_graph``,
``Sequential._functional``,
``Functional._nodes_by_depth``, ``KerasTensor._keras_history``, ``Operation._inbound_nodes``
(and ``Node.input_tensors`` / ``Node.operation``), ``keras.src.ops.nn`` and
``keras.src.ops.numpy`` (the classes of ``keras.ops`` calls in a graph), and
``Adam._get_variable_index`` / ``Adam._momentums`` / ``Adam._velocities`` (the slots of
Keras's Adam, which :func:`adam_apply` updates with one fused kernel per variable).
"""
from __future__ import annotations

import tensorflow as tf
from keras.src.models.functional import Functional
from keras.src.ops import nn as _ops_nn
from keras.src.ops import numpy as _ops_numpy


def functional_class():
    """The class of Functional models (Sequential models are a subclass of it)."""
    return Functional


def is_functional(model) -> bool:
    return isinstance(model, Functional)


def run_through_graph(model, inputs, call_fn):
    """Run a Functional ``model``'s graph on ``inputs``, calling ``call_fn(op, *args,
    **kwargs)`` for every operation instead of the operation itself; None when this Keras
    has no such walker."""
    runner = getattr(model, "_run_through_graph", None)
    if runner is None:
        return None
    return runner(inputs, operation_fn=lambda op: op, call_fn=call_fn)


def graph_of(model):
    """The Functional graph behind ``model``: a Sequential model's inner Functional
    (``Sequential._functional``), else the model itself."""
    return getattr(model, "_functional", None) or model


def has_graph(model) -> bool:
    """Whether ``model`` exposes its nodes by depth (Functional and Sequential models)."""
    return hasattr(model, "_nodes_by_depth")


def nodes_in_order(model):
    """The nodes of a Functional model's graph from its inputs to its outputs (each
    with ``.operation``, ``.input_tensors``, ``.output_tensors``)."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def call_nodes(model):
    """:func:`nodes_in_order` without the input nodes: the layer and operation calls."""
    return [n for n in nodes_in_order(model) if not n.is_input and n.operation is not None]


def keras_history(tensor):
    """``(operation, node index, tensor index)`` of a symbolic tensor, or None."""
    return getattr(tensor, "_keras_history", None)


def producer(tensor):
    """The operation that produced a symbolic tensor, or None."""
    history = keras_history(tensor)
    return history[0] if history else None


def inbound_node(tensor):
    """The node (call of an operation) that produced a symbolic tensor."""
    op, node_index, _ = tensor._keras_history
    return op._inbound_nodes[node_index]


def ops_nn():
    """The module holding the classes of ``keras.ops`` activation calls (``Relu``, ``Softmax`` ...)."""
    return _ops_nn


def ops_numpy():
    """The module holding the classes of ``keras.ops`` numpy-style calls (``Tanh``, ``Add`` ...)."""
    return _ops_numpy


def adam_slots(opt, variable):
    """Keras Adam's first and second moment variables for ``variable`` (the optimizer
    must be built)."""
    i = opt._get_variable_index(variable)
    return opt._momentums[i], opt._velocities[i]


def adam_apply(opt, grads_and_vars):
    """The update of ``keras.optimizers.Adam`` (without amsgrad, weight decay or gradient
    clipping; plain float learning rate or schedule) as TensorFlow's fused
    ``ResourceApplyAdam`` kernel, one op per variable, on the optimizer's own slots and
    step count: the same arithmetic (``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) +
    eps)``), the same checkpoints. Keras builds about twenty ops per variable, which
    makes tracing a training step of a 60-variable network take 1.5 s longer; use inside
    a ``tf.function`` with a single replica. Returns None."""
    f32 = tf.float32
    step = tf.cast(opt.iterations + 1, f32)
    lr = tf.cast(opt.learning_rate, f32)  # a schedule is evaluated at opt.iterations by Keras
    b1, b2, eps = (tf.constant(float(v), f32) for v in (opt.beta_1, opt.beta_2, opt.epsilon))
    b1p, b2p = tf.pow(b1, step), tf.pow(b2, step)
    for g, v in grads_and_vars:
        if g is None:
            continue
        m, s = adam_slots(opt, v)
        tf.raw_ops.ResourceApplyAdam(var=_handle(v), m=_handle(m), v=_handle(s), beta1_power=b1p, beta2_power=b2p,
                                     lr=lr, beta1=b1, beta2=b2, epsilon=eps, grad=tf.cast(g, f32))
    opt.iterations.assign_add(1)


def _handle(variable):
    value = getattr(variable, "value", variable)  # a keras.Variable wraps a tf.Variable
    return value.handle
