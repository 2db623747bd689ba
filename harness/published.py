"""Published test accuracies of deep 1D CNNs on UCR/UEA sets: an external yardstick for the panel.

Mean of 5 runs (%). ResNet and FCN: Ismail Fawaz et al. 2019, "Deep learning for time series
classification: a review" (DMKD), results files of github.com/hfawaz/dl-4-tsc; InceptionTime:
Ismail Fawaz et al. 2020 (DMKD), github.com/hfawaz/InceptionTime results. BasicMotions' ResNet figure
is LITE's rerun (Ismail-Fawaz et al. 2023), as dl-4-tsc predates that archive release.
Keys are harness task names; an npz panel entry named like one of them is matched too.
"""
from __future__ import annotations

SOURCE = ("Ismail Fawaz et al. 2019 (dl-4-tsc: ResNet, FCN; mean of 5 runs), Ismail Fawaz et al. 2020 "
          "(InceptionTime); BasicMotions ResNet from LITE's rerun (2023)")

PUBLISHED_ACCURACY: dict[str, dict[str, float]] = {
    "osuleaf": {"resnet": 98.0, "fcn": 97.9, "inceptiontime": 94.2},
    "gunpoint": {"resnet": 99.1, "fcn": 100.0, "inceptiontime": 100.0},
    "arrowhead": {"resnet": 83.8, "fcn": 84.3, "inceptiontime": 84.6},
    "acsf1": {"resnet": 91.6, "fcn": 89.8, "inceptiontime": 92.0},
    "italypowerdemand": {"resnet": 96.2, "fcn": 96.3, "inceptiontime": 96.5},
    "plaid": {"resnet": 94.0, "fcn": 90.4, "inceptiontime": 94.4},
    "japanesevowels": {"resnet": 99.2, "fcn": 99.3, "inceptiontime": 99.2},
    "basicmotions": {"resnet": 100.0, "fcn": 100.0, "inceptiontime": 100.0},
}


def published(name: str, model: str = "resnet") -> float | None:
    """The published accuracy (%) for a task name (case and separators ignored), or None."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return PUBLISHED_ACCURACY.get(key, {}).get(model)
