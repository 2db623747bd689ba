import json
import math

import pytest

from harness.errors import HarnessError, SchemaError
from harness.results import SCHEMA, Measurement, Results, load_results, measurements_frame, write_results


def _results():
    r = Results(environment={"cpu_model": "x"}, config={"threads": 1})
    r.add_model("t", "teacher", {"onnx_bytes": 10, "params": 5}, multi_task=False)
    r.measurements.append(Measurement(task="t", model="teacher", backend="onnxruntime", suite="latency", batch_size=1,
                                      threads=1, metrics={"p50_ms": 1.5, "median_ci95_ms": [1.4, 1.6], "n": 3},
                                      options={"threads": 1}, samples_ns=[1400000, 1500000, 1600000]))
    return r


def test_round_trip(tmp_path):
    r = _results()
    path = write_results(tmp_path / "r.json", r)
    back = load_results(path)
    assert back.to_dict() == r.to_dict()
    assert back.model_entry("t", "teacher")["onnx_bytes"] == 10
    df = measurements_frame(path)
    assert df.loc[0, "p50_ms"] == 1.5 and df.loc[0, "median_ci95_ms_lo"] == 1.4 and df.loc[0, "n_samples"] == 3


def test_other_schema_and_garbage_rejected(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**_results().to_dict(), "schema": "kd-harness/results/0"}))
    with pytest.raises(SchemaError, match="re-run"):
        load_results(old)
    foreign = tmp_path / "f.json"
    foreign.write_text('{"hello": 1}')
    with pytest.raises(SchemaError, match="not a kd-harness results file"):
        load_results(foreign)
    broken = tmp_path / "b.json"
    broken.write_text('{"schema": ')
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_results(broken)
    with pytest.raises(SchemaError, match="not found"):
        load_results(tmp_path / "missing.json")


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_results(path, _results())
    before = path.read_text()
    bad = _results()
    bad.measurements[0].metrics.p50_ms = math.nan  # strict JSON has no NaN
    with pytest.raises(HarnessError):
        write_results(path, bad)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert SCHEMA in before


def test_typed_metrics_keep_unfit_values_and_refuse_them_in_strict_mode():
    import numpy as np

    from harness.metrics import LatencyMetrics, PairedMetrics

    # a numpy CI is a CI; NaN and inf are dropped (strict JSON cannot hold them)
    m = PairedMetrics.from_dict({"speedup_ci95": np.array([1.0, 2.0]), "p_value": float("nan"),
                                 "process_speedups": [1.0, float("inf")]}, strict=True)
    assert m.speedup_ci95 == (1.0, 2.0) and m.p_value is None and "process_speedups" not in m.to_dict()
    # a value of the wrong type reads as None but survives a load/save round trip
    loaded = LatencyMetrics.from_dict({"n": 2.5, "process_p50_ms": [1.2, None], "p50_ms": 1.0})
    assert loaded.n is None and loaded.to_dict() == {"p50_ms": 1.0, "n": 2.5, "process_p50_ms": [1.2, None]}
    with pytest.raises(TypeError, match="LatencyMetrics.n cannot hold 'x'"):
        LatencyMetrics.from_dict({"n": "x"}, strict=True)


def test_a_measurement_that_is_not_an_object_is_a_schema_error():
    from harness.errors import SchemaError
    from harness.results import Results

    with pytest.raises(SchemaError, match="malformed measurement"):
        Results.from_dict({"schema": "kd-harness/results/1", "measurements": [None]})
