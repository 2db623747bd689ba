"""Input normalisation inside the model: modes, the automatic choice, ONNX parity, old configs."""
import numpy as np
import pytest
import torch

import kd_models
from harness.errors import OptionError
from harness.tasks import load_npz
from harness.train.normalize import SCALE_SPREAD_LIMIT, choose_normalization
from harness.train.trainer import TrainConfig
from harness.train.trio import train_trio
from tests.conftest import make_npz


def _fcn(mode=None, channels=2):
    cfg = {"family": "fcn1d", "in_channels": channels, "num_classes": 3, "widths": [4, 8], "kernels": [3, 3],
           "strides": [1, 2], "dropout": 0.0}
    if mode is not None:
        cfg["normalize"] = mode
    torch.manual_seed(0)
    return kd_models.build_model(cfg).eval()


def test_sample_mode_z_normalises_each_series_and_channel():
    norm = _fcn("sample").norm
    scale = torch.tensor([1e-4, 30.0]).view(1, 2, 1)
    x = (torch.randn(5, 2, 40) + 7.0) * scale  # offsets at each channel's own scale (float32 input precision)
    y = norm(x)
    assert torch.allclose(y.mean(dim=-1), torch.zeros(5, 2), atol=1e-4)
    assert torch.allclose(y.std(dim=-1, unbiased=False), torch.ones(5, 2), atol=1e-3)
    assert torch.equal(norm(torch.full((1, 2, 40), 3.0)), torch.zeros(1, 2, 40))  # constant: zeros, not NaN


def test_sample_mode_model_ignores_each_series_scale_and_offset():
    model = _fcn("sample")
    x = torch.randn(4, 2, 40)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x * 1e4 - 3.0), atol=1e-4)
        dataset = _fcn("dataset")
        assert not torch.allclose(dataset(x), dataset(x * 1e4 - 3.0), atol=1e-2)


def test_none_mode_is_identity_and_configs_default_to_dataset():
    assert torch.equal(_fcn("none").norm(torch.arange(6.0).view(1, 2, 3)), torch.arange(6.0).view(1, 2, 3))
    # a config written before the key existed (older checkpoints) means "dataset"
    assert _fcn(None).norm.mode == "dataset"
    assert kd_models.validate_config(_fcn(None).config)["normalize"] == "dataset"
    with pytest.raises(OptionError, match="normalize"):
        _fcn("per-sample")


@pytest.mark.parametrize("mode", ["dataset", "sample", "sample_scale", "none"])
def test_onnx_export_keeps_the_normalisation(mode, tmp_path):
    import onnxruntime as ort

    from harness.export import export_onnx

    model = _fcn(mode)
    model.set_input_stats([1.0, -2.0], [3.0, 0.5])
    x = (torch.randn(3, 2, 40) * torch.tensor([1e-3, 50.0]).view(1, 2, 1)).numpy()
    export_onnx(model, (2, 40), tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_auto_choice_looks_at_the_spread_of_series_scales():
    rng = np.random.default_rng(0)
    same_scale = rng.standard_normal((50, 1, 64))
    pick = choose_normalization(same_scale)
    assert pick["mode"] == "dataset" and pick["spread"] < SCALE_SPREAD_LIMIT and "training-set statistics" in pick["why"]
    scales = 10.0 ** rng.uniform(-5, 2, size=(50, 1, 1))  # per-series std from 1e-5 to 1e2, as in PLAID
    pick = choose_normalization(same_scale * scales)
    assert pick["mode"] == "sample_scale" and pick["spread"] > SCALE_SPREAD_LIMIT and "z-normalised" in pick["why"]
    assert choose_normalization(same_scale * scales, "none") == {
        "mode": "none", "requested": "none", "why": "chosen with --normalize"}
    assert choose_normalization(np.ones((4, 1, 8)))["mode"] == "dataset"  # all constant: nothing to measure
    with pytest.raises(OptionError):
        choose_normalization(same_scale, "zscore")
    with pytest.raises(OptionError):
        TrainConfig(normalize="zscore")


def test_trio_records_the_choice_and_its_checkpoints_carry_it(tmp_path):
    path = make_npz(tmp_path / "scaled.npz")
    with np.load(path) as z:
        arrays = dict(z)
    rng = np.random.default_rng(1)
    for split in ("X_train", "X_test"):  # every series at its own scale, four orders of magnitude apart
        arrays[split] = arrays[split] * (10.0 ** rng.uniform(-3, 1, size=(len(arrays[split]), 1, 1))).astype(np.float32)
    np.savez(path, **arrays)
    summary = train_trio(load_npz(path), TrainConfig(epochs=2), [0], tmp_path / "run")
    assert summary["normalize"]["mode"] == "sample_scale" and summary["normalize"]["requested"] == "auto"
    for role in ("teacher", "student_scratch", "student_kd"):
        assert summary["models"][role]["model_config"]["normalize"] == "sample_scale"
    summary = train_trio(load_npz(path), TrainConfig(epochs=2, normalize="dataset"), [0], tmp_path / "run2")
    assert summary["models"]["teacher"]["model_config"]["normalize"] == "dataset"


def test_plaid_is_resampled_to_a_fixed_length_and_auto_normalises_per_sample_keeping_the_scale():
    from harness.tasks import get_task

    data = get_task("plaid").load(0)
    assert data.X_train.shape[1:] == (1, 512) and data.classes == 11
    assert len(data.y_train) == 537 and len(data.y_test) == 537
    pick = choose_normalization(data.X_train)
    assert pick["mode"] == "sample_scale" and pick["spread"] > SCALE_SPREAD_LIMIT


def test_default_students_are_never_narrower_than_their_head():
    few = kd_models.default_config("1d", "student", 1, 6, (1, 427))
    assert few["widths"] == [12, 24]  # the built-in tasks keep their students
    many = kd_models.default_config("1d", "student", 1, 52, (1, 2000))
    assert many["widths"][-1] >= 52 and many["widths"][0] > 12
    clip = kd_models.default_config("3d", "student", 1, 40, (1, 16, 32, 32))
    assert clip["widths"][-1] >= 40
    teacher = kd_models.default_config("1d", "teacher", 1, 52, (1, 2000))
    t, s = kd_models.build_model(teacher), kd_models.build_model(many)
    assert sum(p.numel() for p in t.parameters()) > 5 * sum(p.numel() for p in s.parameters())


def test_sample_mode_training_ignores_each_series_scale(tmp_path):
    """Augmentation and mixup see each series at unit scale, so rescaling series changes nothing."""
    from harness.artifacts import load_checkpoint

    path = make_npz(tmp_path / "a.npz")
    with np.load(path) as z:
        arrays = dict(z)
    rng = np.random.default_rng(2)
    scaled = dict(arrays)
    for split in ("X_train", "X_test"):
        scaled[split] = (arrays[split] * (10.0 ** rng.uniform(-3, 1, (len(arrays[split]), 1, 1)))).astype(np.float32)
    np.savez(tmp_path / "b.npz", **scaled)
    cfg = TrainConfig(epochs=2, normalize="sample", augment=True, mixup=0.4, kd_logits="live")
    runs = [train_trio(load_npz(tmp_path / f"{n}.npz"), cfg, [0], tmp_path / n) for n in "ab"]
    for role in ("teacher", "student_kd"):
        a, b = (load_checkpoint(tmp_path / n / r["models"][role]["checkpoints"][0]["path"])[0].state_dict()
                for n, r in zip("ab", runs))
        for k in a:
            if not k.startswith("norm."):  # dataset statistics differ, and sample mode does not use them
                torch.testing.assert_close(a[k], b[k], rtol=1e-2, atol=1e-3)  # float32 rounding of the rescaled inputs
    assert runs[0]["models"]["student_kd"]["accuracy"] == runs[1]["models"]["student_kd"]["accuracy"]


def test_sample_scale_mode_adds_each_series_log_scale_as_a_channel():
    """z-part as in "sample"; one more channel per input channel, constant in time, that moves by
    log(k) / std when a series is scaled by k, so the network sees the scale that "sample" removes."""
    model = _fcn("sample_scale")
    assert model.norm.out_channels == 4 and model.body[0][0].in_channels == 4
    x = (torch.randn(6, 2, 40) * torch.tensor([1e-3, 20.0]).view(1, 2, 1)).numpy()
    model.fit_input_stats(x)
    log_std = 0.5 * np.log(x.astype(np.float64).var(axis=2) + 1e-12)
    np.testing.assert_allclose(model.norm.mean.flatten().numpy(), log_std.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(model.norm.std.flatten().numpy(), log_std.std(axis=0), rtol=1e-5)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        out, scaled = model.norm(xt), model.norm(xt * 1000.0 + 5.0)
        torch.testing.assert_close(out[:, :2], _fcn("sample").norm(xt))
        assert torch.equal(out[:, 2:], out[:, 2:, :1].expand_as(out[:, 2:]))  # constant along time
        torch.testing.assert_close(scaled[:, :2], out[:, :2], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(scaled[:, 2:] - out[:, 2:],
                                   (np.log(1000.0) / model.norm.std).expand_as(out[:, 2:]), atol=1e-3, rtol=1e-4)


def _scale_only_task(path):
    """Two classes with the same shapes (noise) at scales 1e-3 vs 1: only a series' scale tells them apart."""
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 2
        X = rng.standard_normal((n, 1, 32)) * np.where(y == 1, 1.0, 1e-3).reshape(n, 1, 1)
        return X.astype(np.float32), y

    (Xtr, ytr), (Xte, yte) = split(64), split(40)
    np.savez(path, X_train=Xtr, y_train=ytr, X_test=Xte, y_test=yte)
    return load_npz(path)


def test_sample_scale_training_keeps_each_series_scale(tmp_path):
    """With augmentation and mixup on, training still sees every series at its own scale: a task only the
    scale can solve is solved in sample_scale mode and stays at chance in sample mode."""
    from harness.train.trio import train_role

    data = _scale_only_task(tmp_path / "s.npz")
    cfg = TrainConfig(epochs=30, augment=True, mixup=0.4, kd_logits="live")
    acc = {}
    for mode in ("sample", "sample_scale"):
        model_cfg = {**_fcn(mode, channels=1).config, "num_classes": 2}
        acc[mode] = train_role("teacher", model_cfg, data, data.X_train, data.y_train, cfg, 0,
                               show_progress=False).accuracy
    assert acc["sample_scale"] >= 0.95 and acc["sample"] <= 0.75, acc


def test_a_live_teacher_that_keeps_scales_sees_each_series_at_its_own_scale(tmp_path):
    """A student in "sample" mode trains on pre-normalised series; a live teacher in another mode gets the
    augmented batch back at each series' own offset and scale, not unit-scale series."""
    from harness.train.losses import build_loss
    from harness.train.trainer import fit

    data = _scale_only_task(tmp_path / "s.npz")
    teacher = kd_models.build_model({**_fcn("sample_scale", channels=1).config, "num_classes": 2})
    teacher.fit_input_stats(data.X_train)
    student = kd_models.build_model({**_fcn("sample", channels=1).config, "num_classes": 2})
    seen = []
    teacher.register_forward_pre_hook(lambda _m, args: seen.append(args[0].std(dim=-1).flatten()))
    cfg = TrainConfig(epochs=1, augment=True, mixup=0.4, kd_logits="live")
    fit(student, data.X_train, data.y_train, cfg=cfg, epochs=1, seed=0, loss_fn=build_loss("hinton"), teacher=teacher)
    stds = torch.cat(seen)
    assert stds.min() < 0.05 and stds.max() > 0.3  # scales 1e-3 and 1 (mixup blends some), never all ~1


def test_a_finished_run_is_not_reused_when_auto_now_resolves_to_another_normalisation(tmp_path):
    from harness.artifacts import run_is_complete

    path = make_npz(tmp_path / "a.npz")
    cfg = TrainConfig(epochs=1)
    summary = train_trio(load_npz(path), cfg, [0], tmp_path / "run")
    mode = summary["normalize"]["mode"]
    assert run_is_complete(tmp_path / "run", cfg.to_dict(), [0], normalize=mode)
    assert not run_is_complete(tmp_path / "run", cfg.to_dict(), [0], normalize="sample_scale")
    assert run_is_complete(tmp_path / "run", cfg.to_dict(), [0])  # without the check: as before
