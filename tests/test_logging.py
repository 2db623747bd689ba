"""Progress goes through `logging`: INFO by default on stderr, --quiet = WARNING, --verbose = DEBUG.

Results stay on stdout; the library only logs (no handlers, no basicConfig); only the CLI configures.
"""
import json
import logging

import pytest

from harness.cli import build_parser, main
from harness.tasks import load_npz
from harness.train.trainer import TrainConfig
from harness.train.trio import _progress_bar, model_configs, train_trio

PROGRESS_COMMANDS = ("train", "sweep", "bench", "run")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_progress_on_stderr_results_on_stdout_and_quiet_silences_it(capsys, npz_1d, tmp_path):
    # --no-augment: a 1-epoch teacher cannot fit its data, and with augmentation the fit check would warn
    code, out, err = _run(capsys, "train", "--data", npz_1d, "--epochs", "1", "--no-augment", "--out", tmp_path / "a")
    assert code == 0, err
    assert "[trio] input normalisation:" in err and "[trio] teacher: accuracy" in err and "[trio] seed 0:" in err
    assert "student_kd" in out and "wrote" in out and "[trio]" not in out
    assert "saved" not in err  # DEBUG detail only with --verbose

    code, out_q, err_q = _run(capsys, "train", "--data", npz_1d, "--epochs", "1", "--no-augment", "--out", tmp_path / "b", "--quiet")
    assert code == 0, err_q
    assert err_q == ""  # no progress lines and no progress bars
    assert "student_kd" in out_q

    code, _, err_v = _run(capsys, "train", "--data", npz_1d, "--epochs", "1", "--no-augment", "--out", tmp_path / "c", "--verbose")
    assert code == 0, err_v
    assert "[trio] teacher: accuracy" in err_v and "[trio] saved " in err_v


def test_quiet_still_shows_warnings(capsys, npz_1d, tmp_path):
    teacher, _ = model_configs(load_npz(npz_1d))  # a student as big as the teacher: the sizing warning
    code, out, err = _run(capsys, "train", "--data", npz_1d, "--epochs", "1", "--no-augment", "--out", tmp_path / "r", "--quiet",
                          "--student-config", json.dumps(teacher))
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[trio] warning: the student has only 1.0x fewer parameters"), err


@pytest.mark.parametrize("command", PROGRESS_COMMANDS)
def test_every_progress_command_takes_quiet_and_verbose(command):
    parser = build_parser()
    extra = ["somewhere"] if command == "bench" else []
    for flags, quiet, verbose in ((["--quiet"], True, False), (["-q"], True, False), (["--verbose"], False, True),
                                  (["-v"], False, True), ([], False, False)):
        args = parser.parse_args([command, *extra, *flags])
        assert (args.quiet, args.verbose) == (quiet, verbose)


@pytest.mark.parametrize("command", PROGRESS_COMMANDS)
def test_quiet_and_verbose_together_is_a_one_line_error(capsys, command, tmp_path):
    code, _, err = _run(capsys, command, "--quiet", "--verbose")
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("harness: error:") and "--quiet" in lines[0], err


def test_cli_leaves_logging_as_it_found_it(capsys, tmp_path):
    harness_log, root = logging.getLogger("harness"), logging.getLogger()
    before = (list(harness_log.handlers), harness_log.level, list(root.handlers), root.level)
    main(["report", str(tmp_path / "missing.json")])  # fails after logging is configured
    main(["bench", str(tmp_path / "missing"), "--quiet"])
    capsys.readouterr()
    assert (list(harness_log.handlers), harness_log.level, list(root.handlers), root.level) == before


@pytest.mark.slow
def test_library_logs_progress_and_prints_nothing(caplog, capsys, npz_1d, tmp_path):
    from harness.bench import BenchConfig, bench_models, export_run, load_run

    caplog.set_level(logging.INFO, logger="harness")
    data = load_npz(npz_1d)
    train_trio(data, TrainConfig(epochs=1), [0], tmp_path / "run")
    summary, run_dir = load_run(tmp_path / "run")
    cfg = BenchConfig(backends=["onnxruntime"], suites=["accuracy", "storage"], threads=1, quick=True)
    bench_models(export_run(summary, run_dir, data, cfg), data, cfg)
    out, err = capsys.readouterr()
    # no handler of its own: whether and how records are shown is the application's choice (only the
    # tqdm bars, enabled by the INFO level, draw on stderr)
    assert out == "" and "teacher: accuracy" not in err and "export" not in err
    by_logger = {}
    for r in caplog.records:
        by_logger.setdefault(r.name, []).append((r.levelno, r.getMessage()))
    assert any(lv == logging.INFO and msg.startswith("teacher: accuracy") for lv, msg in by_logger["harness.train.trio"])
    bench_msgs = [msg for lv, msg in by_logger["harness.bench"] if lv == logging.INFO]
    assert any(": export teacher -> " in m for m in bench_msgs) and any(": accuracy on " in m for m in bench_msgs)
    assert not logging.getLogger("harness").handlers


def test_progress_bars_follow_the_log_level(caplog):
    caplog.set_level(logging.WARNING, logger="harness")
    bar, _ = _progress_bar("x", 3, True)
    assert bar.disable
    bar.close()
    caplog.set_level(logging.INFO, logger="harness")
    for enabled in (True, False):
        bar, _ = _progress_bar("x", 3, enabled)
        assert bar.disable is not enabled
        bar.close()
