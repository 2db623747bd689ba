"""Distil, measure and report from Python (run from a folder holding mynets/ and data.npz)."""
from harness import HarnessError, api

summary = api.distill(teacher="mynets.nets:teacher", student="mynets.nets:student", data="data.npz",
                      out="runs/api", epochs=3, seeds=[0])
print(f"KD student: {100 * summary['models']['student_kd']['accuracy']['mean']:.1f}%")

results = api.bench("runs/api", backends=["torch", "onnxruntime"], suites=["accuracy", "storage"],
                    quick=True, processes=1)
print(api.report(results, format="md")[:300])

try:
    api.distill(teacher="mynets.nets:no_such_factory", data="data.npz", out="runs/bad")
except HarnessError as exc:  # the one exception type of every bad input
    print(f"refused: {exc}")
