"""The legacy PyTorch reader against a checkpoint written by hand in that format."""
import collections
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from tfviz.zoo.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, TorchFormatError, load_state_dict


def _fake_torch(monkeypatch):
    """Stand-ins for the torch names a legacy pickle refers to, so pickle can write them."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):  # never called while writing
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class FloatStorage:
        pass

    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch, utils


class _Storage:
    def __init__(self, key, data):
        self.key, self.data = key, np.asarray(data, np.float32).ravel()


class _Tensor:
    def __init__(self, storage, offset, size, stride, rebuild):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
        self.rebuild = rebuild

    def __reduce__(self):
        return (self.rebuild, self.args)


def _write_checkpoint(state, storages, torch):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.data.size, None)
            return None

    f = io.BytesIO()
    for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(obj, f, protocol=2)
    P(f, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], f, protocol=2)
    for s in storages:
        f.write(struct.pack("<q", s.data.size))
        f.write(s.data.astype("<f4").tobytes())
    return f.getvalue()


def test_reads_strided_and_offset_tensors(monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    a = np.arange(6, dtype=np.float32)  # one storage shared by two tensors
    st = _Storage("0", a)
    st2 = _Storage("1", [7.5])
    state = collections.OrderedDict(
        w=_Tensor(st, 0, (2, 3), (3, 1), utils._rebuild_tensor_v2),       # plain 2x3
        wt=_Tensor(st, 0, (3, 2), (1, 3), utils._rebuild_tensor_v2),      # its transpose (strided view)
        tail=_Tensor(st, 4, (2,), (1,), utils._rebuild_tensor_v2),        # offset view
        s=_Tensor(st2, 0, (), (), utils._rebuild_tensor_v2),              # a scalar
    )
    raw = _write_checkpoint(state, [st, st2], torch)
    monkeypatch.delitem(sys.modules, "torch")
    out = load_state_dict(raw)
    assert list(out) == ["w", "wt", "tail", "s"]
    np.testing.assert_array_equal(out["w"], a.reshape(2, 3))
    np.testing.assert_array_equal(out["wt"], a.reshape(2, 3).T)
    np.testing.assert_array_equal(out["tail"], [4, 5])
    assert out["s"] == np.float32(7.5)


def test_refuses_arbitrary_code_and_garbage(monkeypatch):
    f = io.BytesIO()
    for obj in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(obj, f, protocol=2)
    f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # os.system("echo pwned")
    with pytest.raises(TorchFormatError, match="refusing"):
        load_state_dict(f.getvalue())
    with pytest.raises(TorchFormatError, match="magic"):
        load_state_dict(pickle.dumps(123))
    with pytest.raises(TorchFormatError, match="zip"):
        load_state_dict(b"PK\x03\x04rest")


def test_truncated_checkpoint(monkeypatch):
    torch, utils = _fake_torch(monkeypatch)
    st = _Storage("0", np.arange(4))
    raw = _write_checkpoint({"w": _Tensor(st, 0, (4,), (1,), utils._rebuild_tensor_v2)}, [st], torch)
    with pytest.raises(TorchFormatError, match="truncated"):
        load_state_dict(raw[:-3])


def test_real_lite0_checkpoint():
    from tfviz.zoo.efficientnet_lite0 import weights_file
    sd = load_state_dict(weights_file())
    assert sum(v.size for v in sd.values()) == 4_694_073
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in k for k in sd)  # Lite: no squeeze-excite
