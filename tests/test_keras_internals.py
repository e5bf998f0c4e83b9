"""The private Keras APIs tfviz uses (all in tfviz.keras_internals) still work: each check
names the API, so a Keras upgrade that changes one fails here, loudly, not deep inside a
method."""
import keras
import numpy as np
import pytest

from tfviz import keras_internals as K


@pytest.fixture(scope="module")
def graph():
    inp = keras.Input((8, 8, 3), name="img")
    a = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    r = keras.ops.relu(a)                                     # an operation, not a layer
    t = keras.ops.tanh(r)
    inner_in = keras.Input((8, 8, 4))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 1, name="inner_conv")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.GlobalAveragePooling2D(name="gap")], name="seq")
    out = keras.layers.Dense(3, name="dense")(seq(inner(t)))
    return keras.Model(inp, keras.ops.softmax(out), name="outer"), inner, seq


def test_functional_class_and_run_through_graph(graph):
    model, inner, seq = graph
    assert K.is_functional(model) and K.is_functional(inner), "keras.src.models.functional.Functional moved"
    called = []

    def call(op, *args, **kwargs):
        called.append(type(op).__name__)
        return op(*args, **kwargs)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    out = K.run_through_graph(model, keras.ops.convert_to_tensor(x), call)
    assert out is not None, "Functional._run_through_graph is gone"
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(x)), rtol=1e-5, atol=1e-6,
                               err_msg="Functional._run_through_graph no longer runs the graph")
    assert {"Conv2D", "Relu", "Tanh", "Softmax", "Dense"} <= set(called), \
        f"Functional._run_through_graph(call_fn=) no longer calls every operation: {called}"


def test_nodes_by_depth_in_order(graph):
    model, inner, seq = graph
    assert K.has_graph(model), "Functional._nodes_by_depth is gone"
    ops = [n.operation for n in K.nodes_in_order(model)]
    names = [getattr(op, "name", type(op).__name__) for op in ops]
    assert names.index("conv") < names.index("inner") < names.index("seq") < names.index("dense"), \
        f"Functional._nodes_by_depth no longer orders the graph from inputs to outputs: {names}"
    for n in K.nodes_in_order(model):
        assert hasattr(n, "input_tensors") and hasattr(n, "output_tensors"), "Node.input_tensors/output_tensors"
    assert K.graph_of(seq) is not seq and K.has_graph(K.graph_of(seq)), "Sequential._functional is gone"


def test_keras_history_and_inbound_nodes(graph):
    model, inner, seq = graph
    assert type(K.producer(model.outputs[0])).__name__ == "Softmax", "KerasTensor._keras_history changed"
    node = K.inbound_node(model.outputs[0])  # Operation._inbound_nodes[node index]
    assert K.producer(node.input_tensors[0]).name == "dense", "Operation._inbound_nodes / Node.input_tensors changed"
    assert K.producer(np.zeros(3)) is None


def test_ops_classes_are_where_they_were():
    nn, npy = K.ops_nn(), K.ops_numpy()
    for name in ("Relu", "Relu6", "Softmax", "LeakyRelu", "Sigmoid"):
        assert isinstance(getattr(nn, name, None), type), f"keras.src.ops.nn.{name} is gone"
    assert isinstance(getattr(npy, "Tanh", None), type), "keras.src.ops.numpy.Tanh is gone"


@pytest.mark.parametrize("lr", [0.1, "schedule"])
def test_adam_slots_and_the_fused_update_match_keras_adam(lr):
    """Adam._get_variable_index / _momentums / _velocities still name the slots, and the
    fused update moves the variables, the slots and the step exactly as Keras's Adam does."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(3)]

    def run(apply):
        rate = keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5) if lr == "schedule" else lr
        opt = keras.optimizers.Adam(rate)
        ws = [keras.Variable(w) for w in start]
        opt.build(ws)
        step = tf.function(lambda gs: apply(opt, list(zip(gs, ws))), autograph=False)
        for gs in grads:
            step([tf.constant(g) for g in gs])
        m, v = K.adam_slots(opt, ws[1])
        return [np.asarray(w) for w in ws] + [np.asarray(m), np.asarray(v), int(opt.iterations)]

    keras_adam = run(lambda opt, gv: opt.apply_gradients(gv))
    fused = run(K.adam_apply)
    assert keras_adam[-1] == fused[-1] == 3, "Adam.iterations"
    assert np.abs(keras_adam[-2]).sum() > 0, "Adam._velocities no longer holds the second moments"
    for a, b in zip(keras_adam[:-1], fused[:-1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5,   # the same formula, another rounding order
                                   err_msg="adam_apply no longer matches keras.optimizers.Adam")
    assert np.abs(fused[0] - start[0]).max() > 0.05   # the variables moved
