"""The HTML report renders its plots in a real headless browser (skipped without chromium)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_fixtures import add_variants, make_results  # noqa: E402

from harness.report import build_report  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)")


def _chromium(tmp_path: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
           *args]
    env = {**os.environ, "HOME": str(tmp_path)}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {timeout}s")


def test_html_report_plots_render(tmp_path):
    report = tmp_path / "report.html"
    report.write_text(build_report(make_results(tasks=("osuleaf",)), "html"), encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    plot_divs = re.findall(r'<div[^>]+id="plot-osuleaf-[a-z]+"[^>]*class="[^"]*js-plotly-plot', dom)
    assert len(plot_divs) >= 3, f"plotly did not initialise the plot divs: {len(plot_divs)}"
    assert dom.count('class="main-svg"') >= 3  # plotly drew svg layers into each plot
    assert dom.count('class="scatterlayer') >= 2 and dom.count('class="boxlayer') >= 1
    assert "KD student:" in dom


def test_html_report_plots_variants(tmp_path):
    """Quantized variants are points of the accuracy-vs-latency plot, each under its own label."""
    res = add_variants(make_results(tasks=("osuleaf",)), {
        "student_kd@int8": {"accuracy": 0.895, "time": 0.7}, "teacher@int8": {"accuracy": 0.915, "time": 0.5}})
    report = tmp_path / "report.html"
    report.write_text(build_report(res, "html"), encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    scatter = proc.stdout[proc.stdout.index('id="plot-osuleaf-scatter"'):proc.stdout.index('id="plot-osuleaf-latency"')]
    labels = re.findall(r"<text[^>]*>([a-z_@0-9-]+)</text>", scatter)
    for role in ("teacher", "teacher@int8", "student_kd", "student_kd@int8"):
        assert role in labels, labels
    assert "Distill, quantize, or both" in proc.stdout
