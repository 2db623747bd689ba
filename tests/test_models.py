"""Model families: shapes, features/head, input normalisation, counting, configs, ONNX round trip."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import kd_models as M
from harness.errors import OptionError

SHAPE_1D = (2, 40)  # C x L
SHAPE_3D = (1, 4, 8, 8)  # C x D x H x W


def tiny(family: str, in_channels: int = 2, num_classes: int = 3) -> dict:
    if family == "fcn1d":
        return {"family": "fcn1d", "in_channels": in_channels, "num_classes": num_classes,
                "widths": [8, 16], "kernels": [8, 3], "strides": [1, 2], "dropout": 0.1}
    if family == "resnet1d":
        return {"family": "resnet1d", "in_channels": in_channels, "num_classes": num_classes,
                "widths": [8, 8, 16], "kernels": [8, 5, 3], "strides": [2, 1, 2], "dropout": 0.0}
    if family == "c3d":
        return {"family": "c3d", "in_channels": in_channels, "num_classes": num_classes,
                "widths": [4, 8], "convs": [1, 2], "pools": [[1, 2, 2], [1, 1, 1]],
                "stem_stride": [1, 2, 2], "kernel": 3, "dropout": 0.2}
    raise AssertionError(family)


def shape_of(family: str, in_channels: int = 2) -> tuple[int, ...]:
    return (in_channels,) + (SHAPE_1D[1:] if M.FAMILY_KIND[family] == "1d" else SHAPE_3D[1:])


def test_families_listed():
    assert set(M.FAMILIES) == {"fcn1d", "resnet1d", "c3d"}


@pytest.mark.parametrize("family", ["fcn1d", "resnet1d", "c3d"])
@pytest.mark.parametrize("batch", [1, 4])
def test_output_shape_and_features(family, batch):
    torch.manual_seed(0)
    model = M.build_model(tiny(family))
    x = torch.randn(batch, *shape_of(family))
    model.eval()
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    assert logits.shape == (batch, 3) and logits.dtype == torch.float32
    assert isinstance(model.head, torch.nn.Linear)
    assert feats.shape == (batch, model.head.in_features)
    torch.testing.assert_close(model.head(feats), logits)
    # Dropout lives inside features, so the identity also holds in train mode under the same RNG.
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(1)
    b = model.head(model.features(x))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("length", [1, 7, 427])
def test_1d_lengths_odd_and_even_kernels(length):
    for family in ("fcn1d", "resnet1d"):
        model = M.build_model(tiny(family)).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 2, length)).shape == (2, 3)


@pytest.mark.parametrize("family", ["fcn1d", "resnet1d", "c3d"])
def test_input_norm_inside_model(family):
    torch.manual_seed(0)
    model = M.build_model(tiny(family)).eval()
    shape = shape_of(family)
    spatial = len(shape) - 1
    x = torch.randn(3, *shape) * 5 + 2
    with torch.no_grad():
        plain = model(x)
    mean, std = np.array([2.0, -1.0]), np.array([5.0, 0.5])
    model.set_input_stats(mean, std)
    bshape = (1, 2) + (1,) * spatial
    assert model.norm.mean.shape == bshape and model.norm.std.shape == bshape
    assert {"norm.mean", "norm.std"} <= set(model.state_dict())
    with torch.no_grad():
        normed = model(x)
        by_hand = (x - torch.tensor(mean, dtype=torch.float32).reshape(bshape)) / torch.tensor(
            std, dtype=torch.float32
        ).reshape(bshape)
        model.set_input_stats([0.0, 0.0], [1.0, 1.0])
        expected = model(by_hand)
    assert not torch.allclose(normed, plain)
    torch.testing.assert_close(normed, expected)


def test_input_stats_std_clamped_and_checked():
    model = M.build_model(tiny("fcn1d"))
    model.set_input_stats(torch.tensor([0.0, 1.0]), [0.0, 2.0])
    assert float(model.norm.std.min()) == pytest.approx(1e-6)
    with pytest.raises(OptionError):
        model.set_input_stats([0.0], [1.0])
    # buffers survive a state_dict round trip into a fresh model
    fresh = M.build_model(tiny("fcn1d"))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.norm.mean, model.norm.mean)


@pytest.mark.parametrize("family", ["fcn1d", "resnet1d", "c3d"])
def test_deterministic_init(family):
    torch.manual_seed(123)
    a = M.build_model(tiny(family)).state_dict()
    torch.manual_seed(123)
    b = M.build_model(tiny(family)).state_dict()
    torch.manual_seed(124)
    c = M.build_model(tiny(family)).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_count_macs_by_hand():
    # bare conv: out positions x Cin x Cout x k
    conv = torch.nn.Conv1d(2, 4, 3, padding=1)
    assert M.count_macs(conv, (2, 10)) == 10 * 2 * 4 * 3
    # a one-layer fcn1d: conv (10 * 2 * 4 * 3) + head (4 * 3); BN, ReLU, mean are not MACs
    cfg = {"family": "fcn1d", "in_channels": 2, "num_classes": 3,
           "widths": [4], "kernels": [3], "strides": [1], "dropout": 0.0}
    model = M.build_model(cfg)
    model.train()
    assert M.count_macs(model, (2, 10)) == 10 * 2 * 4 * 3 + 4 * 3
    assert model.training  # mode restored
    # 3D: stride-2 conv on 4x4x4 -> 2x2x2 outputs
    conv3 = torch.nn.Conv3d(1, 2, 3, stride=2, padding=1, bias=False)
    assert M.count_macs(conv3, (1, 4, 4, 4)) == 8 * 1 * 2 * 27


def test_count_params():
    model = M.build_model(tiny("fcn1d"))
    # conv 2->8 k8, BN 8, conv 8->16 k3, BN 16, head 16->3
    expected = 2 * 8 * 8 + 2 * 8 + 8 * 16 * 3 + 2 * 16 + 16 * 3 + 3
    assert M.count_params(model) == expected
    for p in model.parameters():
        p.requires_grad_(False)
    assert M.count_params(model) == expected


@pytest.mark.parametrize(
    "kind,shape",
    [("1d", (1, 427)), ("1d", (12, 1460)), ("1d", (3, 24)), ("3d", (1, 16, 32, 32)), ("3d", (1, 32, 32, 32)),
     ("3d", (2, 3, 5, 5))],
)
def test_default_student_much_smaller(kind, shape):
    classes = 6
    teacher_cfg = M.default_config(kind, "teacher", shape[0], classes, shape)
    student_cfg = M.default_config(kind, "student", shape[0], classes, shape)
    assert M.validate_config(teacher_cfg) == teacher_cfg
    teacher, student = M.build_model(teacher_cfg), M.build_model(student_cfg)
    assert M.count_params(teacher) >= 10 * M.count_params(student)
    assert M.count_macs(teacher, shape) >= 10 * M.count_macs(student, shape)
    with torch.no_grad():
        for model in (teacher.eval(), student.eval()):
            assert model(torch.randn(2, *shape)).shape == (2, classes)


def test_default_families_and_json():
    import json

    t1 = M.default_config("1d", "teacher", 1, 6, (1, 427))
    t3 = M.default_config("3d", "teacher", 1, 10, (1, 16, 32, 32))
    assert t1["family"] == "resnet1d" and t3["family"] == "c3d"
    assert json.loads(json.dumps(t1)) == t1
    # spatial-only input_shape is accepted too
    assert M.default_config("1d", "student", 1, 6, (427,)) == M.default_config("1d", "student", 1, 6, (1, 427))


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c.update(family="vgg"), "valid families: fcn1d, resnet1d, c3d"),
        (lambda c: c.pop("family"), "valid families"),
        (lambda c: c.pop("widths"), "missing widths"),
        (lambda c: c.update(depth=3), "unknown keys depth"),
        (lambda c: c.update(in_channels=0), "in_channels"),
        (lambda c: c.update(num_classes=-2), "num_classes"),
        (lambda c: c.update(num_classes=True), "num_classes"),
        (lambda c: c.update(widths=[8, 0, 16]), "widths"),
        (lambda c: c.update(widths=[]), "widths"),
        (lambda c: c.update(strides=[1, 2]), "strides"),
        (lambda c: c.update(kernels="7"), "kernels"),
        (lambda c: c.update(dropout=1.0), "dropout"),
    ],
)
def test_bad_configs_raise_option_error(mutate, needle):
    cfg = copy.deepcopy(tiny("resnet1d"))
    mutate(cfg)
    with pytest.raises(OptionError) as err:
        M.build_model(cfg)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg


def test_bad_c3d_and_default_args():
    for bad in ({"kernel": 4}, {"stem_stride": [1, 2]}, {"pools": [[1, 2, 2]]}, {"convs": [1, 0]}):
        cfg = tiny("c3d")
        cfg.update(bad)
        with pytest.raises(OptionError):
            M.build_model(cfg)
    with pytest.raises(OptionError):
        M.build_model(["resnet1d"])
    with pytest.raises(OptionError, match="valid kinds"):
        M.default_config("2d", "teacher", 1, 2, (1, 10))
    with pytest.raises(OptionError, match="valid roles"):
        M.default_config("1d", "assistant", 1, 2, (1, 10))
    with pytest.raises(OptionError):
        M.default_config("1d", "teacher", 2, 2, (1, 10))  # channel mismatch
    with pytest.raises(OptionError):
        M.default_config("3d", "teacher", 1, 2, (1, 10))  # wrong rank


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")
def test_onnx_round_trip_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = M.build_model(tiny("resnet1d")).eval()
    model.set_input_stats([0.5, -0.5], [2.0, 0.25])
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model, (torch.randn(2, *SHAPE_1D),), str(path), dynamo=True, verbose=False,
        input_names=["x"], output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for batch in (1, 3):
        x = torch.randn(batch, *SHAPE_1D)
        with torch.no_grad():
            ref = model(x).numpy()
        out = sess.run(None, {name: x.numpy()})[0]
        assert out.shape == (batch, 3)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
