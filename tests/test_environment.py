"""Environment block: the CPU's vector ISA and clock, and no crash without /proc/cpuinfo."""
from __future__ import annotations

import builtins

import pytest

from harness.measure import environment as env

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: Test EPYC 9999
cpu MHz\t\t: 2596.146
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni

processor\t: 1
model name\t: Test EPYC 9999
cpu MHz\t\t: 1200.000
flags\t\t: fpu sse
"""


def test_isa_from_flags_and_vector_bits():
    assert env.isa_from_flags("fpu sse4_2 avx avx2 fma avx512f avx512_vnni amx_tile") == [
        "amx_tile", "avx", "avx2", "avx512_vnni", "avx512f", "fma", "sse4_2"]
    # py-cpuinfo on other systems spells some flags without the underscore
    assert env.isa_from_flags(["avx512vnni", "avxvnni", "AVX2"]) == ["avx2", "avx512_vnni", "avx_vnni"]
    assert env.isa_from_flags([]) == []
    assert env.vector_bits(["avx512f", "avx2"]) == 512
    assert env.vector_bits(["avx2"]) == 256 and env.vector_bits(["avx"]) == 256
    assert env.vector_bits(["sse4_2"]) == 128 and env.vector_bits([]) == 128
    assert env.vector_bits(None) is None


def test_cpu_keys_from_proc_cpuinfo(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    monkeypatch.setattr(env, "CPUINFO_PATH", str(info))
    monkeypatch.setattr(env, "CPUFREQ_MAX_PATH", str(tmp_path / "no-cpufreq"))
    assert env._cpu_model() == "Test EPYC 9999"
    assert env._cpu_isa() == ["avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f", "avx512vl",
                              "fma", "sse4_2"]
    assert env._cpu_clock() == (pytest.approx(2596.146), "/proc/cpuinfo cpu MHz")
    # cpufreq's maximum clock wins over the current one
    freq = tmp_path / "max_freq"
    freq.write_text("3700000\n")
    monkeypatch.setattr(env, "CPUFREQ_MAX_PATH", str(freq))
    assert env._cpu_clock() == (pytest.approx(3700.0), "cpufreq cpuinfo_max_freq")


def test_collect_without_proc_cpuinfo(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "CPUINFO_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr(env, "CPUFREQ_MAX_PATH", str(tmp_path / "missing-too"))
    real_import = builtins.__import__

    def no_cpuinfo(name, *args, **kwargs):
        if name == "cpuinfo":
            raise ImportError("no py-cpuinfo here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cpuinfo)
    e = env.collect(threads=1)
    assert e["cpu_isa"] is None and e["cpu_vector_bits"] is None
    assert e["cpu_mhz"] is None and e["cpu_mhz_source"] is None
    assert "cpu_model" in e and e["threads"] == 1


def test_collect_records_isa_here():
    e = env.collect()
    for key in ("cpu_model", "cpu_isa", "cpu_vector_bits", "cpu_mhz", "cpu_mhz_source"):
        assert key in e
    if e["cpu_isa"] is not None:
        assert e["cpu_isa"] == sorted(e["cpu_isa"]) and set(e["cpu_isa"]) <= set(env.ISA_FLAGS)
        assert e["cpu_vector_bits"] in (128, 256, 512)
