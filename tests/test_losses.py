import numpy as np
import pytest
import torch

from harness.errors import OptionError
from harness.train.losses import build_loss, loss_names


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


S = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
T_ = np.array([[1.5, 0.0, -0.5], [-1.0, 0.5, 2.0]])
Y = np.array([0, 2])


def test_hinton_matches_hand_computation():
    T, alpha = 3.0, 0.7
    ps, pt = _softmax(S / T), _softmax(T_ / T)
    kl = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    ce = np.mean(-np.log(_softmax(S)[np.arange(2), Y]))
    expected = alpha * T * T * kl + (1 - alpha) * ce
    got = build_loss("hinton", T=T, alpha=alpha)(torch.tensor(S), torch.tensor(T_), torch.tensor(Y))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_hinton_alpha_zero_is_cross_entropy():
    got = build_loss("hinton", T=4, alpha=0.0)(torch.tensor(S), torch.tensor(T_), torch.tensor(Y))
    ce = build_loss("ce")(torch.tensor(S), None, torch.tensor(Y))
    assert float(got) == pytest.approx(float(ce))


def test_dkd_matches_hand_computation():
    T, a, b = 2.0, 1.0, 8.0
    ps, pt = _softmax(S / T), _softmax(T_ / T)
    tckd = nckd = 0.0
    for i, y in enumerate(Y):
        bs = np.array([ps[i, y], 1 - ps[i, y]])
        bt = np.array([pt[i, y], 1 - pt[i, y]])
        tckd += np.sum(bt * np.log(bt / bs))
        mask = np.arange(3) != y
        qs = _softmax((S[i, mask] / T)[None])[0]
        qt = _softmax((T_[i, mask] / T)[None])[0]
        nckd += np.sum(qt * np.log(qt / qs))
    tckd, nckd = tckd / 2 * T * T, nckd / 2 * T * T
    ce = np.mean(-np.log(_softmax(S)[np.arange(2), Y]))
    expected = ce + a * tckd + b * nckd
    got = build_loss("dkd", T=T, alpha=a, beta=b)(torch.tensor(S), torch.tensor(T_), torch.tensor(Y))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_kd_loss_zero_when_student_equals_teacher_and_alpha_one():
    got = build_loss("hinton", T=4, alpha=1.0)(torch.tensor(T_), torch.tensor(T_), torch.tensor(Y))
    assert abs(float(got)) < 1e-9


@pytest.mark.parametrize("params", [{"T": 0}, {"T": -1}, {"T": float("nan")}, {"alpha": 1.5}, {"alpha": -0.1}])
def test_bad_hyperparameters_rejected(params):
    with pytest.raises(OptionError):
        build_loss("hinton", **params)


def test_unknown_loss():
    with pytest.raises(OptionError, match="known"):
        build_loss("nope")
    assert {"hinton", "dkd"} <= set(loss_names())


def test_attention_distance_is_zero_for_the_same_map_and_ignores_scale_and_width():
    from harness.train.losses import attention_distance

    torch.manual_seed(0)
    f = torch.randn(4, 8, 32)
    assert attention_distance(f, f).item() == pytest.approx(0.0, abs=1e-12)
    # A channel-scaled copy with another channel count has the same (normalised) attention map.
    wide = torch.cat([f, f, f], dim=1) * 5.0
    assert attention_distance(f, wide).item() == pytest.approx(0.0, abs=1e-10)
    # Different lengths (a student with one strided stage fewer): pooled to the shorter map, no error.
    assert attention_distance(torch.randn(4, 8, 32), torch.randn(4, 16, 16)).item() > 0
    # 3D clips too.
    assert attention_distance(torch.randn(2, 4, 4, 8, 8), torch.randn(2, 6, 2, 4, 4)).item() > 0


def test_attention_transfer_adds_the_feature_term_to_hinton_and_needs_feature_maps():
    s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    fs, ft = torch.rand(4, 8, 16), torch.rand(4, 16, 8)
    at = build_loss("at", T=2.0, alpha=0.5, beta=1000.0)
    assert at.uses_features and not getattr(build_loss("hinton"), "uses_features", False)
    from harness.train.losses import attention_distance

    expected = build_loss("hinton", T=2.0, alpha=0.5)(s, t, y) + 500.0 * attention_distance(fs, ft)
    assert at(s, t, y, student_features=fs, teacher_features=ft).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(OptionError, match="feature maps"):
        at(s, t, y)
    with pytest.raises(OptionError, match="beta"):
        build_loss("at", beta=-1.0)
    from harness.train.trainer import TrainConfig

    with pytest.raises(OptionError, match="live"):
        TrainConfig(kd_loss="at", kd_logits="cached")
