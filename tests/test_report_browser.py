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


@pytest.mark.slow
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


@pytest.mark.slow
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


# Appended to a copy of the report: after the plots have drawn, record on <body> whether the page is wider
# than the window (horizontal overflow) and how many pairs of point labels in each scatter plot overlap.
_PROBE = """<script>
setTimeout(function () {
  var b = document.body;
  b.dataset.pageWidth = document.documentElement.scrollWidth;
  b.dataset.windowWidth = window.innerWidth;
  var overlaps = 0, labels = 0;
  document.querySelectorAll('[id$="-scatter"]').forEach(function (plot) {
    var boxes = Array.from(plot.querySelectorAll('.textpoint text')).map(function (t) {
      return t.getBoundingClientRect(); }).filter(function (r) { return r.width > 0; });
    labels += boxes.length;
    for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
      var a = boxes[i], c = boxes[j];
      if (a.left < c.right && c.left < a.right && a.top < c.bottom && c.top < a.bottom) overlaps++;
    }
  });
  b.dataset.labels = labels;
  b.dataset.overlaps = overlaps;
}, 3000);
</script>"""


@pytest.mark.slow
def test_html_report_first_screen_fits_1280_and_labels_do_not_overlap(tmp_path):
    """At 1280x800 the page never scrolls sideways (wide detail tables scroll in their own box), the
    verdict comes before the plots, and a variant's label never sits on its fp32 model's label."""
    res = add_variants(make_results(tasks=("osuleaf", "moving_digits")), {
        "student_kd@int8": {"accuracy": 0.905, "time": 0.97}, "teacher@int8": {"accuracy": 0.918, "time": 0.98},
        "student_scratch@int8": {"accuracy": 0.9, "time": 0.99}})
    html = build_report(res, "html")
    assert html.index("Deploy") < html.index('id="plot-osuleaf-scatter"') < html.index("<h3>Detail</h3>")
    report = tmp_path / "report.html"
    report.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    proc = _chromium(tmp_path, "--window-size=1280,800", "--dump-dom", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout).group(1)
    data = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert int(data["window-width"]) <= 1280
    assert int(data["page-width"]) <= int(data["window-width"]), data
    assert int(data["labels"]) >= 8, data  # every model and variant labelled, in both tasks
    assert data["overlaps"] == "0", data
    shot = tmp_path / "first-screen.png"
    proc = _chromium(tmp_path, "--window-size=1280,800", f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (1280, 800)
