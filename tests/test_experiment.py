"""Experiment files map onto the CLI's own options; the docs' API example runs."""
import json
import runpy
import shutil
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.experiment import expand_config

ROOT = Path(__file__).resolve().parents[1]


def _subs():
    return build_parser().get_default("subcommands")


def test_file_gives_the_same_options_as_the_command_line(tmp_path):
    (tmp_path / "e.toml").write_text('task = "gunpoint"\nteacher = "a.b:c"\n[train]\nepochs = 3\nseeds = [0, 1]\n'
                                     'augment = false\nteacher_kwargs = {dim = 64}\n[bench]\nsuites = ["x"]\n')
    parser = build_parser()
    from_file = parser.parse_args(expand_config(["train", "--config", str(tmp_path / "e.toml")], _subs()))
    by_hand = parser.parse_args(["train", "--task", "gunpoint", "--teacher", "a.b:c", "--epochs", "3", "--seeds",
                                 "0,1", "--no-augment", "--teacher-kwargs", '{"dim": 64}'])
    assert vars(from_file) == vars(by_hand)
    # the command line wins over the file
    later = parser.parse_args(expand_config(["train", "--config", str(tmp_path / "e.toml"), "--epochs", "9"], _subs()))
    assert later.epochs == 9 and later.seeds == "0,1"


@pytest.mark.parametrize("body,needle", [
    ("nope = 3\n", "unknown option 'nope' for `harness train`"),
    ("epochs = -1\n", "--epochs must be a positive integer"),
    ("augment = 3\n", "augment is a flag"),
    ("epochs = \n", "not valid TOML"),
])
def test_bad_files_are_one_line(capsys, tmp_path, body, needle):
    (tmp_path / "e.toml").write_text(body)
    code = main(["train", "--config", str(tmp_path / "e.toml"), "--task", "gunpoint", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "r").exists()
    code = main(["train", "--config", str(tmp_path / "missing.toml")])
    assert code == 2 and "not found" in capsys.readouterr().err


def _user_folder(tmp_path, monkeypatch):
    from tests.conftest import make_npz
    from tests.test_user_models import NETS

    (tmp_path / "mynets").mkdir()
    (tmp_path / "mynets" / "__init__.py").write_text("")
    # The docs' models: a conv teacher and a thinner conv student (a recurrent student exports slowly).
    (tmp_path / "mynets" / "nets.py").write_text(NETS + "\n\ndef student(width=4, **kw):\n    return Conv(width=width, **kw)\n")
    make_npz(tmp_path / "data.npz", "1d")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.slow
def test_the_docs_experiment_file_trains_and_runs(capsys, tmp_path, monkeypatch):
    _user_folder(tmp_path, monkeypatch)
    shutil.copy(ROOT / "docs" / "examples" / "experiment.toml", tmp_path / "e.toml")
    assert main(["train", "--config", "e.toml", "--quiet"]) == 0
    summary = json.loads((tmp_path / "runs" / "mine" / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["models"]["student_kd"]["model_config"]["kwargs"] == {"width": 4}
    assert main(["run", "--config", "e.toml", "--quiet", "--no-history", "--executor", "local"]) == 0
    doc = json.loads((tmp_path / "runs" / "mine" / "results.json").read_text())
    assert {m["suite"] for m in doc["measurements"]} == {"accuracy", "storage"}


@pytest.mark.slow
def test_the_docs_api_example_runs(capsys, tmp_path, monkeypatch):
    _user_folder(tmp_path, monkeypatch)
    runpy.run_path(str(ROOT / "docs" / "examples" / "api_example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "KD student:" in out and "refused: the teacher: module 'mynets.nets' has no attribute" in out
    assert (tmp_path / "runs" / "api" / "results.json").is_file()
