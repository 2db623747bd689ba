"""Users' own models and data by import path: train, teacher checkpoint, bench --model, bad inputs, MACs."""
import json
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from harness.cli import main

PKG = "kdh_userpkg"
NETS = textwrap.dedent('''
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, in_channels=1, num_classes=3, width=8):
            super().__init__()
            self.conv = nn.Conv1d(in_channels, width, 5, padding=2)
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean(-1))

    class Recurrent(nn.Module):
        def __init__(self, in_channels=1, num_classes=3, hidden=6):
            super().__init__()
            self.rnn = nn.GRU(in_channels, hidden, batch_first=True)
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x):
            h, _ = self.rnn(x.transpose(1, 2))
            return self.head(h[:, -1])

    def teacher(**kw):
        return Conv(**kw)

    def student(**kw):
        return Recurrent(**kw)

    def wide(**kw):
        return Conv(width=12, **kw)

    def raises():
        raise ValueError("no such width")

    def not_a_module():
        return 42

    def wrong_classes():
        return Conv(num_classes=7)

    NOT_CALLABLE = 3

    def data_not_a_dataset():
        return "a", "b"

    class Series(torch.utils.data.Dataset):
        def __init__(self, n, seed, ragged=False, label_offset=0):
            g = np.random.default_rng(seed)
            self.y = np.arange(n) % 3
            t = np.linspace(0, 1, 48)
            self.x = [np.sin(2 * np.pi * (c + 1) * 2 * t + g.uniform(0, 6.28))[None, :].astype("float32")
                      for c in self.y]
            if ragged:
                self.x[-1] = self.x[-1][:, :40]
            self.offset = label_offset

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return torch.from_numpy(self.x[i]), int((self.y[i] + self.offset) % 3)

    def data(test_seed=1, test_label_offset=0):
        return Series(24, 0), Series(12, test_seed, label_offset=test_label_offset), ["a", "b", "c"]

    def ragged():
        return Series(24, 0, ragged=True), Series(12, 1)
''')
NETS = "import numpy as np\n" + NETS


@pytest.fixture
def userpkg(tmp_path, monkeypatch):
    """A package of the user's own, outside the repository, importable from the working folder only."""
    pkg = tmp_path / "work" / PKG
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(NETS)
    (pkg / "broken.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.chdir(tmp_path / "work")
    import importlib
    import sys

    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        monkeypatch.delitem(sys.modules, name)  # each test imports its own copy from its own folder
    monkeypatch.syspath_prepend(str(tmp_path / "work"))
    importlib.invalidate_caches()
    return tmp_path / "work"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(code, err, *needles):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("harness: error:"), err
    for needle in needles:
        assert needle in lines[0], lines[0]


# ---------------------------------------------------------------- import paths
@pytest.mark.parametrize("text", ["pkg", "pkg.mod", "pkg.mod:", ":fn", "pkg mod:fn", "pkg.mod:fn()", "1pkg:fn", 3])
def test_import_path_syntax_is_refused(text):
    from kd_models import ModelFactoryError, parse_import_path

    with pytest.raises(ModelFactoryError, match="package.module:callable"):
        parse_import_path(text)


def test_import_path_parts():
    from kd_models import parse_import_path

    assert parse_import_path("a.b.c:Make.build") == ("a.b.c", "Make.build")


def test_builtin_families_are_factories_behind_the_same_door():
    import kd_models

    cfg = kd_models.default_config("1d", "student", 1, 3, (1, 48))
    by_family = kd_models.build_model(cfg)
    by_path = kd_models.build_model({"factory": "kd_models:resnet1d",
                                     "kwargs": {k: v for k, v in cfg.items() if k != "family"}})
    assert type(by_family) is type(by_path)
    assert [p.shape for p in by_family.parameters()] == [p.shape for p in by_path.parameters()]


@pytest.mark.parametrize("flag,value,needle", [
    ("--teacher", f"{PKG}.missing:teacher", "no module named"),
    ("--teacher", f"{PKG}.nets:nope", "has no attribute 'nope'"),
    ("--teacher", f"{PKG}.nets:NOT_CALLABLE", "not a callable"),
    ("--teacher", f"{PKG}.broken:teacher", "RuntimeError: half-written module"),
    ("--teacher", f"{PKG}.nets:raises", "ValueError: no such width"),
    ("--teacher", f"{PKG}.nets:not_a_module", "returned a int, not a torch.nn.Module"),
    ("--student", f"{PKG}.nets:wrong_classes", "3 classes"),
    ("--teacher", "not a path", "package.module:callable"),
])
def test_bad_factories_are_one_line_and_write_nothing(capsys, userpkg, npz_1d, flag, value, needle):
    out = userpkg / "run"
    code, _, err = _run(capsys, "train", "--data", npz_1d, flag, value, "--epochs", "1", "--out", out, "--quiet")
    _one_line(code, err, needle)
    assert not (out / "summary.json").exists()


def test_factory_kwargs_that_do_not_fit_are_one_line(capsys, userpkg, npz_1d):
    code, _, err = _run(capsys, "train", "--data", npz_1d, "--teacher", f"{PKG}.nets:teacher",
                        "--teacher-kwargs", '{"depth": 3}', "--epochs", "1", "--out", userpkg / "r", "--quiet")
    _one_line(code, err, "TypeError", "depth")
    code, _, err = _run(capsys, "train", "--data", npz_1d, "--teacher", f"{PKG}.nets:teacher",
                        "--teacher-kwargs", "{width: 3}", "--epochs", "1", "--out", userpkg / "r", "--quiet")
    _one_line(code, err, "--teacher-kwargs is not valid JSON")


# ---------------------------------------------------------------- training, teacher checkpoint
@pytest.mark.slow
def test_train_user_models_then_reuse_the_teacher_checkpoint(capsys, userpkg, npz_1d):
    from harness.tasks import load_npz
    from harness.train.trainer import accuracy

    code, out, err = _run(capsys, "train", "--data", npz_1d, "--teacher", f"{PKG}.nets:teacher", "--student",
                          f"{PKG}.nets:student", "--epochs", "2", "--out", userpkg / "run", "--quiet")
    assert code == 0, err
    summary = json.loads((userpkg / "run" / "summary.json").read_text())
    teacher = summary["models"]["teacher"]
    assert teacher["model_config"] == {"factory": f"{PKG}.nets:teacher", "kwargs": {}}
    src = teacher["model_source"]
    assert src["source_file"].endswith("nets.py") and len(src["source_sha256"]) == 64
    assert summary["models"]["student_kd"]["macs_detail"]["not_counted"] == []
    assert summary["models"]["student_kd"]["family"] == f"{PKG}.nets:student"

    # The user's teacher as a plain state_dict: not trained again, measured on the test split.
    import kd_models
    from harness.artifacts import load_checkpoint

    model, _ = load_checkpoint(userpkg / "run" / teacher["checkpoints"][0]["path"])
    torch.save(model.state_dict(), userpkg / "teacher_state.pt")
    data = load_npz(npz_1d)
    plain = accuracy(model, data.X_test, data.y_test)
    code, out, err = _run(capsys, "train", "--data", npz_1d, "--teacher", f"{PKG}.nets:teacher", "--student",
                          f"{PKG}.nets:student", "--teacher-checkpoint", userpkg / "teacher_state.pt",
                          "--epochs", "2", "--out", userpkg / "run2", "--quiet")
    assert code == 0, err
    again = json.loads((userpkg / "run2" / "summary.json").read_text())["models"]["teacher"]
    assert again["epochs"] == 0 and again["accuracy"]["mean"] == plain
    assert again["teacher_checkpoint"]["sha256"] and again["train_seconds"]["mean"] == 0.0
    # A checkpoint of another architecture: the first mismatching keys named, nothing written.
    torch.save(kd_models.build_model({"factory": f"{PKG}.nets:wide", "kwargs": {}}).state_dict(), userpkg / "w.pt")
    torch.save({"rnn.weight_ih_l0": torch.zeros(18, 1)}, userpkg / "x.pt")
    for ckpt, needle in (("w.pt", "shape mismatch conv.weight (12, 1, 5) vs (8, 1, 5)"),
                         ("x.pt", "missing keys conv.weight, conv.bias, head.weight")):
        code, _, err = _run(capsys, "train", "--data", npz_1d, "--teacher", f"{PKG}.nets:teacher",
                            "--teacher-checkpoint", userpkg / ckpt, "--epochs", "1", "--out", userpkg / "r3", "--quiet")
        _one_line(code, err, needle)
        assert not (userpkg / "r3" / "summary.json").exists()


def test_a_checkpoint_is_loaded_weights_only(tmp_path):
    from harness.artifacts import read_state_dict
    from harness.errors import CheckpointError

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled code ran",))

    torch.save({"conv.weight": torch.zeros(1), "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="nothing but weights is loaded"):
        read_state_dict(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        read_state_dict(tmp_path / "junk.pt")


# ---------------------------------------------------------------- datasets by import path
def test_dataset_factory_errors(capsys, userpkg):
    for path, needle in ((f"{PKG}.nets:data_not_a_dataset", "not a Dataset"),
                         (f"{PKG}.nets:ragged", "inconsistent shapes: train[23] is (1, 40)"),
                         (f"{PKG}.nets:Conv", "returned a Conv")):
        code, _, err = _run(capsys, "train", "--dataset", path, "--epochs", "1", "--out", userpkg / "r", "--quiet")
        _one_line(code, err, needle)


@pytest.mark.slow
def test_training_never_reads_the_test_split(userpkg):
    """Two datasets with the same training split and different test splits train bit-identical models."""
    from harness import api

    runs = [api.distill(data=f"{PKG}.nets:data", dataset_kwargs=kw, out=userpkg / name, epochs=2)
            for name, kw in (("a", {}), ("b", {"test_seed": 7, "test_label_offset": 1}))]
    for role in ("teacher", "student_scratch", "student_kd"):
        shas = [r["models"][role]["checkpoints"][0]["weights_sha256"] for r in runs]
        assert shas[0] == shas[1], role
    assert runs[0]["dataset"]["class_names"] == ["a", "b", "c"]


# ---------------------------------------------------------------- bench --model and the API
@pytest.mark.slow
def test_bench_models_by_import_path_matches_a_plain_loop(capsys, userpkg, npz_1d):
    import kd_models
    from harness.tasks import load_npz
    from harness.train.trainer import accuracy

    data = load_npz(npz_1d)
    expected = {}
    for role, fn in (("teacher", "teacher"), ("mine", "wide")):  # convs: a recurrent model exports slowly
        torch.manual_seed(1)
        model = kd_models.build_model({"factory": f"{PKG}.nets:{fn}", "kwargs": {}}).eval()
        torch.save(model.state_dict(), userpkg / f"{role}.pt")
        expected[role] = accuracy(model, data.X_test, data.y_test)
    code, out, err = _run(capsys, "bench", "--model", f"teacher={PKG}.nets:teacher@teacher.pt", "--model",
                          f"mine={PKG}.nets:wide@mine.pt", "--data", npz_1d, "--quick", "--processes", "1",
                          "--suites", "accuracy,storage", "--no-history", "--out", userpkg / "res.json", "--quiet")
    assert code == 0, err
    doc = json.loads((userpkg / "res.json").read_text())
    acc = {(m["model"], m["backend"]): m["metrics"]["accuracy"] for m in doc["measurements"] if m["suite"] == "accuracy"}
    for role, value in expected.items():
        assert acc[(role, "torch")] == pytest.approx(value) and acc[(role, "onnxruntime")] == pytest.approx(value)
    entry = next(e for e in doc["models"].values() if e.get("role") == "mine")
    assert entry["parity"]["passed"] and entry["model_config"]["factory"] == f"{PKG}.nets:wide"


def test_bench_model_bad_inputs(capsys, userpkg, npz_1d):
    torch.save({"conv.weight": torch.zeros(1)}, userpkg / "bad.pt")
    cases = [(["--model", f"te@cher={PKG}.nets:teacher"], "must start with a letter"),
             (["--model", f"teacher={PKG}.nets:teacher@missing.pt"], "checkpoint not found"),
             (["--model", f"teacher={PKG}.nets:teacher@bad.pt", "--data", npz_1d], "does not fit the model"),
             (["--model", f"teacher={PKG}.nets:teacher", "--model", f"teacher={PKG}.nets:student"], "given twice"),
             (["--model", f"teacher={PKG}.nets:teacher"], "needs --input-shape"),
             (["--model", f"teacher={PKG}.nets:teacher", "--model-kwargs", "other={}"], "no --model names")]
    for extra, needle in cases:
        code, _, err = _run(capsys, "bench", *extra, "--no-history", "--out", userpkg / "r.json", "--quiet")
        _one_line(code, err, needle)
        assert not (userpkg / "r.json").exists()


def test_api_prints_nothing_and_raises_one_type(capsys, userpkg, npz_1d):
    from harness import HarnessError, api

    with pytest.raises(HarnessError):
        api.distill(teacher=f"{PKG}.nets:nope", data=str(npz_1d), out=userpkg / "x")
    with pytest.raises(HarnessError):
        api.distill(data="no-such-task", out=userpkg / "x")
    with pytest.raises(HarnessError):
        api.distill(data=str(npz_1d), out=userpkg / "x", not_an_option=3)
    with pytest.raises(HarnessError):
        api.report([], format="pdf")

    def local_factory():
        return nn.Linear(1, 1)

    with pytest.raises(HarnessError, match="importable"):
        api.model_spec(local_factory)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


# ---------------------------------------------------------------- MACs of layer types users' models contain
def test_macs_of_recurrent_attention_and_depthwise_layers():
    import kd_models

    lstm = nn.LSTM(3, 8, batch_first=True, bidirectional=True)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = lstm, nn.Linear(16, 2)

        def forward(self, x):
            return self.head(self.lstm(x.transpose(1, 2))[0][:, -1])

    detail = kd_models.count_macs_detail(Seq(), (3, 20))
    assert detail["macs"] == 2 * 4 * 8 * (3 + 8) * 20 + 16 * 2 and detail["by_formula"] == {"LSTM": 2 * 4 * 8 * 11 * 20}

    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1)

    class Att(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = enc

        def forward(self, x):
            return self.enc(x.transpose(1, 2)).mean(1)

    # q, k, v and out projections + two attention products + the feed-forward, for 10 tokens of width 16
    att = kd_models.count_macs_detail(Att(), (16, 10))
    assert att["macs"] >= 10 * (4 * 16 * 16 + 2 * 16 * 32) + 2 * 10 * 10 * 16 and att["not_counted"] == []
    dw = nn.Conv3d(4, 4, 3, padding=1, groups=4)
    assert kd_models.count_macs(dw, (4, 2, 3, 3)) == 4 * 27 * 2 * 3 * 3


def test_macs_not_counted_are_named_by_layer_type():
    import kd_models

    class Opaque(nn.Module):  # a weight used outside any op the counter sees
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x[:, :, :4].sum(1) * self.w

    assert kd_models.count_macs_detail(Opaque(), (2, 8))["not_counted"] == ["Opaque"]


def test_role_type():
    from harness.errors import OptionError
    from harness.roles import Role, user_role

    r = Role.parse("student_kd@int8")
    assert (r.base, r.variant, str(r), r.is_variant) == ("student_kd", "int8", "student_kd@int8", True)
    assert Role.parse("a@") == Role("a@") and Role.parse("teacher").is_reference
    assert sorted(map(Role.parse, ["zz", "student_kd", "teacher@int8", "teacher"]), key=Role.sort_key) == [
        Role("teacher"), Role("teacher", "int8"), Role("student_kd"), Role("zz")]
    with pytest.raises(OptionError):
        user_role("x@int8")
    assert np.isfinite(1.0)


def test_an_operator_the_exporter_cannot_export_is_named(capsys, userpkg):
    (userpkg / PKG / "odd.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        class Eig(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(8, 3)

            def forward(self, x):
                h = x.flatten(1)
                return self.head(h) + torch.linalg.eigvalsh(h.T @ h)[:3].sum()

        def make():
            return Eig()
    '''))
    code, out, err = _run(capsys, "bench", "--model", f"teacher={PKG}.odd:make", "--input-shape", "1,8", "--quick",
                          "--no-history", "--out", userpkg / "r.json", "--quiet")
    errors = [ln for ln in err.splitlines() if not ln.startswith("[user_models] warning: teacher: no checkpoint")]
    _one_line(code, "\n".join(errors), "operator aten::linalg_eigvalsh has no ONNX conversion",
              "nothing was measured or written")
    assert out == "" and not (userpkg / "r.json").exists() and not (userpkg / "r-models").exists()


STREAMED = textwrap.dedent('''
    import numpy as np
    import torch

    FETCHED = {"train": 0, "test": 0}
    POISON_TEST = [False]

    class FromNpz(torch.utils.data.Dataset):
        """Rows of an npz split, one at a time, counting what is fetched."""
        def __init__(self, path, split):
            with np.load(path) as z:
                self.X, self.y = z[f"X_{split}"], z[f"y_{split}"]
            self.split = split

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            if self.split == "test" and POISON_TEST[0]:
                raise RuntimeError("the test split was read")
            FETCHED[self.split] += 1
            return torch.from_numpy(self.X[i]), int(self.y[i])

    def data(path):
        return FromNpz(path, "train"), FromNpz(path, "test")
''')


@pytest.mark.slow
def test_a_streamed_dataset_trains_exactly_as_the_same_data_in_memory(userpkg, npz_1d):
    """The trio on a --dataset factory (rows fetched on demand) and on the same arrays from an npz: the same
    fingerprint, bit-identical weights for every role, the same accuracies."""
    from harness import api
    from harness.tasks.streamed import is_streamed

    (userpkg / PKG / "streamed.py").write_text(STREAMED)
    streamed, _ = api.load_data(f"{PKG}.streamed:data", {"path": str(npz_1d)})
    in_memory, _ = api.load_data(str(npz_1d))
    assert is_streamed(streamed.X_train) and streamed.fingerprint() == in_memory.fingerprint()
    for norm in ("dataset", "sample_scale"):
        a = api.distill(data=streamed, out=userpkg / f"s-{norm}", epochs=2, normalize=norm)
        b = api.distill(data=in_memory, out=userpkg / f"m-{norm}", epochs=2, normalize=norm)
        for role in ("teacher", "student_scratch", "student_kd"):
            assert a["models"][role]["checkpoints"][0]["weights_sha256"] == \
                b["models"][role]["checkpoints"][0]["weights_sha256"], (norm, role)
            assert a["models"][role]["accuracy"] == b["models"][role]["accuracy"]


def test_int8_calibration_and_training_splits_never_read_the_test_split(userpkg, npz_1d):
    import importlib

    from harness import api
    from harness.tasks.streamed import take_rows
    from harness.variants import VariantSettings, calibration_data

    (userpkg / PKG / "streamed.py").write_text(STREAMED)
    data, _ = api.load_data(f"{PKG}.streamed:data", {"path": str(npz_1d)})
    mod = importlib.import_module(f"{PKG}.streamed")
    mod.POISON_TEST[0] = True  # from here on, any read of the test split raises
    X = calibration_data(data, VariantSettings(calibration_samples=8))
    assert X.shape == (8, *data.input_shape) and X.dtype == np.float32
    view = take_rows(data.X_train, np.array([3, 1]))
    assert np.array_equal(view[:], np.load(npz_1d)["X_train"][[3, 1]])
    with pytest.raises(RuntimeError, match="test split was read"):
        data.X_test[:1]
