import json

import numpy as np
import pytest
import torch

from harness.artifacts import load_checkpoint, read_checkpoint
from harness.errors import CheckpointError, OptionError
from harness.tasks import load_npz
from harness.train.trainer import TrainConfig, augment_batch, mix_batch
from harness.train.trio import parse_seeds, stratified_split, train_trio


def _train(npz, out, seeds=(0,), **kw):
    cfg = TrainConfig(epochs=2, **kw)
    return train_trio(load_npz(npz), cfg, list(seeds), out)


def test_summary_schema_and_files(npz_1d, tmp_path):
    summary = _train(npz_1d, tmp_path / "run", seeds=(0, 1))
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["task"] == "tiny1d" and summary["seeds"] == [0, 1]
    for role in ("teacher", "student_scratch", "student_kd"):
        m = summary["models"][role]
        assert isinstance(m["params"], int) and m["params"] > 0
        assert isinstance(m["macs"], int) and m["macs"] > 0
        acc = m["accuracy"]
        assert 0.0 <= acc["mean"] <= 1.0
        assert acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1]
        assert all(0 <= a <= 1 for a in acc["per_seed"])
        assert len(m["train_seconds"]["per_seed"]) == len(acc["per_seed"])
        for ck in m["checkpoints"]:
            assert (tmp_path / "run" / ck["path"]).is_file()
    assert len(summary["models"]["student_kd"]["accuracy"]["per_seed"]) == 2
    assert summary["models"]["teacher"]["params"] >= 10 * summary["models"]["student_kd"]["params"]
    assert "kd_vs_scratch" in summary["comparison"]


def test_training_is_deterministic(npz_1d, tmp_path):
    a = _train(npz_1d, tmp_path / "a")
    b = _train(npz_1d, tmp_path / "b")
    for role in ("teacher", "student_scratch", "student_kd"):
        assert a["models"][role]["accuracy"]["per_seed"] == b["models"][role]["accuracy"]["per_seed"]
        pa = tmp_path / "a" / a["models"][role]["checkpoints"][0]["path"]
        pb = tmp_path / "b" / b["models"][role]["checkpoints"][0]["path"]
        sa, sb = read_checkpoint(pa)[1], read_checkpoint(pb)[1]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_live_and_cached_logits_both_train(npz_1d, tmp_path):
    s = _train(npz_1d, tmp_path / "live", kd_logits="live")
    assert s["models"]["student_kd"]["kd_logits"] == "live"


def test_3d_trio(npz_3d, tmp_path):
    s = _train(npz_3d, tmp_path / "r3")
    assert s["kind"] == "3d"
    assert s["models"]["teacher"]["macs"] >= 10 * s["models"]["student_kd"]["macs"]


def test_checkpoint_round_trip_and_errors(npz_1d, tmp_path):
    s = _train(npz_1d, tmp_path / "run")
    path = tmp_path / "run" / s["models"]["student_kd"]["checkpoints"][0]["path"]
    model, meta = load_checkpoint(path)
    data = load_npz(npz_1d)
    with torch.inference_mode():
        acc = (model(torch.from_numpy(data.X_test)).argmax(1).numpy() == data.y_test).mean()
    assert acc == pytest.approx(meta["accuracy"])
    teacher_cfg = s["models"]["teacher"]["model_config"]
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(path, expect_config=teacher_cfg)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a kd-harness checkpoint"):
        load_checkpoint(foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(corrupt)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("text", ["", "a", "1,,2", "-1", "1,1"])
def test_bad_seeds(text):
    with pytest.raises(OptionError):
        parse_seeds(text)


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"temperature": 0}, {"temperature": -2}, {"alpha": 1.5},
                                {"kd_logits": "warm"}, {"kd_loss": "nope"}, {"augment": True},
                                {"mixup": 0.4}, {"mixup": -1.0, "kd_logits": "live"},
                                {"mixup": float("nan"), "kd_logits": "live"}])
def test_bad_config(kw):
    with pytest.raises(OptionError):
        TrainConfig(**kw)


def test_stratified_split_disjoint_and_stratified():
    y = np.repeat(np.arange(4), 25)
    fit, val = stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == 100
    assert np.all(np.bincount(y[val]) == 5)


@pytest.mark.parametrize("shape", [(8, 2, 40), (8, 1, 10, 20, 20)])
def test_augment_keeps_shape_and_is_seeded(shape):
    x = torch.randn(shape)
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)


def test_augment_shifts_image_axes_of_clips():
    # A single bright voxel: over many draws it must land off its row/column, so H and W are shifted too.
    x = torch.zeros(1, 1, 4, 20, 20)
    x[0, 0, :, 10, 10] = 1.0
    moved_h = moved_w = False
    for seed in range(30):
        y = augment_batch(x, torch.Generator().manual_seed(seed))[0, 0, 2]
        h, w = divmod(int(y.argmax()), 20)
        moved_h |= h != 10
        moved_w |= w != 10
    assert moved_h and moved_w


def test_mix_batch_blends_pairs():
    x = torch.arange(6, dtype=torch.float32).view(6, 1, 1).expand(6, 1, 5).contiguous()
    mixed, order, lam = mix_batch(x, torch.Generator().manual_seed(0), 0.4)
    assert 0.0 <= lam <= 1.0 and sorted(order.tolist()) == list(range(6))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[order])


def test_mixup_and_augment_train(npz_1d, tmp_path):
    s = _train(npz_1d, tmp_path / "mix", kd_logits="live", augment=True, mixup=0.4)
    assert s["train_config"]["mixup"] == 0.4 and s["train_config"]["augment"] is True
    assert 0.0 <= s["models"]["student_kd"]["accuracy"]["mean"] <= 1.0


def test_epochs_override_means_every_role():
    recipe = TrainConfig(student_epochs=60)
    assert recipe.with_overrides(epochs=5).student_epochs is None
    assert recipe.with_overrides(epochs=5).epochs_for("3d", "student_kd") == 5
    assert recipe.with_overrides(epochs=5, student_epochs=7).epochs_for("3d", "student_kd") == 7
    assert recipe.with_overrides(alpha=0.9).student_epochs == 60
    floored = TrainConfig(min_epoch_samples=200)  # an epoch count given is passes over the data, floor and all
    assert floored.with_overrides(epochs=5).min_epoch_samples is None
    assert floored.with_overrides(epochs=5, min_epoch_samples=64).min_epoch_samples == 64
    assert floored.with_overrides(student_epochs=9).min_epoch_samples == 200


def test_teacher_that_cannot_fit_its_training_data_retrains_without_augmentation(npz_1d, tmp_path, monkeypatch):
    import harness.train.teacher as teacher
    import harness.train.trio as trio
    from harness.train.summary_table import format_summary

    real = trio.accuracy
    data = load_npz(npz_1d)
    fit_checks = []

    def first_fit_fails(model, X, y):
        if len(y) != len(data.y_train):  # a test-split score inside training: left alone
            return real(model, X, y)
        fit_checks.append(1)
        return 0.0 if len(fit_checks) == 1 else real(model, X, y)  # only the first fit check fails

    monkeypatch.setattr(trio, "accuracy", first_fit_fails)
    monkeypatch.setattr(teacher, "accuracy", first_fit_fails)  # the fit check lives in train/teacher.py
    summary = train_trio(data, TrainConfig(epochs=2, augment=True, kd_logits="live"), [0], tmp_path / "run")
    check = summary["teacher_fit_check"]
    assert check["train_accuracy"] == 0.0 and check["floor"] == pytest.approx(1 / 3 + (2 / 3) / 2)
    assert check["retrain_without_augment"] and "without augmentation" in check["why"]
    assert summary["train_config"]["augment"] is True  # as asked: a rerun of the same command matches
    assert summary["effective_train_config"]["augment"] is False
    assert "teacher fit check" in format_summary(summary)


def test_fit_floor_is_halfway_from_chance():
    from harness.train.trio import fit_floor

    assert fit_floor(2) == 0.75 and fit_floor(10) == pytest.approx(0.55)


def test_min_epoch_samples_cycles_a_small_set_and_leaves_a_large_one_alone():
    from harness.train.trainer import epoch_batch_sizes, epoch_passes, fit
    from models.registry import build_model, default_config

    assert [epoch_passes(36, m) for m in (None, 0, 36, 37, 200)] == [1, 1, 1, 2, 6]
    # A floor over a set smaller than the batch still fills full batches: 10 samples, floor 200, batch 32.
    assert epoch_batch_sizes(10, TrainConfig(min_epoch_samples=200)) == [32] * 6 + [8]
    assert epoch_batch_sizes(10, TrainConfig()) == [10]
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 1, 32)).astype(np.float32), np.arange(10) % 2

    def steps_and_weights(**kw):
        calls = []

        def loss(out, tl, yb):
            calls.append(len(yb))
            return torch.nn.functional.cross_entropy(out, yb)

        torch.manual_seed(0)
        model = build_model(default_config("1d", "student", 1, 2, (1, 32)))
        fit(model, X, y, cfg=TrainConfig(batch_size=4, **kw), epochs=2, seed=0, loss_fn=loss)
        return calls, [p.detach().clone() for p in model.parameters()]

    one_pass, w_one = steps_and_weights()
    assert one_pass == [4, 4, 2] * 2  # 10 samples, batch 4: 3 steps an epoch
    cycled, _ = steps_and_weights(min_epoch_samples=40)  # 4 passes of 10: 10 full batches an epoch
    assert cycled == [4] * 20
    same, w_same = steps_and_weights(min_epoch_samples=10)  # a set this large is untouched, bit for bit
    assert same == one_pass and all(torch.equal(a, b) for a, b in zip(w_one, w_same))
    even, _ = steps_and_weights(even_batches=True)  # no runt batch: sizes differ by at most one
    assert even == [4, 3, 3] * 2
    even_cycled, _ = steps_and_weights(even_batches=True, min_epoch_samples=25)  # 3 passes = 30 samples
    assert even_cycled == [4] * 6 + [3] * 2 + [4] * 6 + [3] * 2  # 8 steps, not 7 of 4 and a runt of 2


def test_min_epoch_samples_keys_a_job_only_where_it_changes_training(npz_1d):
    from harness.train.jobs import role_job
    from models.registry import default_config

    data = load_npz(npz_1d)
    n = len(data.y_train)
    mc = default_config("1d", "teacher", data.in_channels, data.classes, data.input_shape)

    def key(**kw):
        return role_job("t", data, "teacher", mc, TrainConfig(epochs=2, **kw), 0, cpus=1).key

    assert key() == key(min_epoch_samples=0) == key(min_epoch_samples=n)  # stored results stay valid
    assert key(min_epoch_samples=n + 1) != key() != key(min_epoch_samples=4 * n) != key(min_epoch_samples=n + 1)
    assert key(even_batches=True, batch_size=n) == key(batch_size=n)  # one batch an epoch either way
    assert key(even_batches=True, batch_size=n - 1) != key(batch_size=n - 1)  # n-1 + 1 becomes halves


def test_min_epoch_samples_travels_in_a_recipe(tmp_path):
    from harness.train.recipes import load_recipe, save_recipe

    saved = TrainConfig(min_epoch_samples=128, even_batches=True, kd_loss="at", kd_logits="live", at_beta=3.0)
    save_recipe(tmp_path / "r.json", saved, task="x")
    loaded = load_recipe(tmp_path / "r.json", TrainConfig())
    assert (loaded.min_epoch_samples, loaded.even_batches, loaded.kd_loss, loaded.at_beta) == (128, True, "at", 3.0)
    with pytest.raises(OptionError, match="min epoch samples"):
        TrainConfig(min_epoch_samples=-1)


def test_summary_records_optimizer_steps_of_the_batch_layout(npz_1d, tmp_path):
    from harness.train.trainer import epoch_batch_sizes

    data = load_npz(npz_1d)
    n = len(data.y_train)
    cfg = TrainConfig(epochs=2, batch_size=n - 1, even_batches=True)  # n-1 + 1 would be the plain layout
    summary = train_trio(data, cfg, [0], tmp_path / "run")
    assert epoch_batch_sizes(n, cfg) == [n - n // 2, n // 2]
    for role in ("teacher", "student_scratch", "student_kd"):
        assert summary["models"][role]["optimizer_steps"] == 2 * 2
    assert summary["train_config"]["even_batches"] is True


def test_the_1d_recipe_trains_in_even_batches_and_the_cli_can_turn_them_off():
    from harness.cli import build_parser
    from harness.commands import train_config_from_args
    from harness.train.recipes import default_recipe

    assert default_recipe("1d").even_batches and not default_recipe("3d").even_batches
    args = build_parser().parse_args(["train", "--task", "gunpoint", "--no-even-batches"])
    assert train_config_from_args(args, default_recipe("1d")).even_batches is False


def test_attention_transfer_trains_through_the_student_body_and_leaves_no_hooks(npz_1d):
    from harness.train.jobs import role_job
    from harness.train.losses import build_loss
    from harness.train.trainer import fit
    from models.registry import build_model, default_config

    data = load_npz(npz_1d)
    torch.manual_seed(0)
    teacher = build_model(default_config("1d", "teacher", data.in_channels, data.classes, data.input_shape))
    cfg = TrainConfig(kd_loss="at", kd_logits="live", batch_size=8)

    def train(loss):
        torch.manual_seed(1)
        student = build_model(default_config("1d", "student", data.in_channels, data.classes, data.input_shape))
        fit(student, data.X_train, data.y_train, cfg=cfg, epochs=1, seed=0, loss_fn=loss, teacher=teacher)
        assert not student.body._forward_hooks and not teacher.body._forward_hooks
        return [p.detach().clone() for p in student.parameters()]

    def failing(out, tl, yb, **kw):
        raise RuntimeError("loss failed")

    failing.uses_features = True
    torch.manual_seed(1)
    student = build_model(default_config("1d", "student", data.in_channels, data.classes, data.input_shape))
    with pytest.raises(RuntimeError, match="loss failed"):
        fit(student, data.X_train, data.y_train, cfg=cfg, epochs=1, seed=0, loss_fn=failing, teacher=teacher)
    assert not student.body._forward_hooks and not teacher.body._forward_hooks  # removed when training fails too
    hinton = train(build_loss("hinton", T=4.0, alpha=0.5))
    at = train(build_loss("at", T=4.0, alpha=0.5, beta=1000.0))
    assert any(not torch.equal(a, b) for a, b in zip(hinton, at))  # the feature term moved the weights
    mc = default_config("1d", "student", data.in_channels, data.classes, data.input_shape)

    def key(**kw):
        return role_job("s", data, "student_kd", mc, TrainConfig(kd_logits="live", **kw), 0, cpus=1).key

    assert key(at_beta=1.0) == key(at_beta=2.0)  # a Hinton job does not read at_beta
    assert key(kd_loss="at", at_beta=1.0) != key(kd_loss="at", at_beta=2.0) != key()
