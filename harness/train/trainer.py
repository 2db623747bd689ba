"""One training loop for every role: teacher and scratch student use CE, the KD student a KD loss.

Deterministic: the same seed gives the same weights (torch's CPU kernels are deterministic once
the thread count is fixed; shuffling and augmentation draw from a seeded generator).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from harness.errors import OptionError
from harness.options import check_choice, check_int, check_number
from harness.train.losses import FEATURE_LOSSES, build_loss, check_alpha, check_temperature, loss_names

# Why these defaults: see README "Training defaults". Epoch counts are per kind because a 3D
# epoch costs ~10x a 1D one on 2 cores, and the whole trio must train in a few minutes.
DEFAULT_EPOCHS = {"1d": 150, "3d": 30}


@dataclass(frozen=True)
class TrainConfig:
    """How the trio trains; validated on construction (`with_overrides` / dataclasses.replace for changes)."""

    epochs: int | None = None  # None: DEFAULT_EPOCHS[kind]
    student_epochs: int | None = None  # None: same as epochs
    batch_size: int = 32
    # An epoch draws at least this many samples (whole reshuffled passes over a smaller training set), so
    # the schedule's optimizer steps do not shrink with the set: None or 0 = one pass per epoch.
    min_epoch_samples: int | None = None
    # Split each epoch into batches whose sizes differ by at most one, instead of full batches and a runt
    # (36 samples at batch 32: 18 + 18, not 32 + 4). A runt of a few samples takes a full-rate optimizer
    # step on BatchNorm statistics of those few samples, every epoch.
    even_batches: bool = False
    lr: float = 3e-3
    weight_decay: float = 1e-4
    kd_loss: str = "hinton"
    temperature: float = 4.0
    alpha: float = 0.5
    dkd_beta: float = 8.0
    # Attention transfer's weight (kd_loss "at"). Zagoruyko & Komodakis used 1000 on image maps; on the 1D
    # small-set validation draws 1000 cost 6.4 pts and 10 gained 0.56 (docs/evidence/attention-transfer.txt).
    at_beta: float = 10.0
    kd_logits: str = "cached"  # cached | live
    augment: bool = False
    mixup: float = 0.0  # Beta(m, m) mixing of sample pairs; 0 = off
    calibrate_teacher: bool = False
    threads: int | None = None
    normalize: str = "auto"  # auto | dataset | sample | sample_scale | none (harness/train/normalize.py)

    def __post_init__(self) -> None:
        from harness.train.normalize import NORMALIZE_CHOICES

        check_choice(self.normalize, "normalize", NORMALIZE_CHOICES)
        check_int(self.epochs, "epochs", optional=True)
        check_int(self.student_epochs, "student-epochs", optional=True)
        check_int(self.batch_size, "batch size", minimum=2)
        check_int(self.min_epoch_samples, "min epoch samples (0 = off)", minimum=0, optional=True)
        check_number(self.lr, "learning rate", minimum=0, exclusive=True)
        check_temperature(self.temperature)
        if self.kd_loss == "hinton":
            check_alpha(self.alpha)
        else:
            check_number(self.alpha, "alpha", minimum=0)
        if self.kd_loss not in loss_names() or self.kd_loss == "ce":
            raise OptionError(f"unknown KD loss {self.kd_loss!r}; choose hinton, dkd or at")
        check_number(self.at_beta, "attention transfer beta", minimum=0)
        if self.kd_loss in FEATURE_LOSSES and self.kd_logits == "cached":
            raise OptionError(f"KD loss {self.kd_loss} compares feature maps: it needs --kd-logits live")
        check_choice(self.kd_logits, "--kd-logits", ("cached", "live"))
        check_number(self.mixup, "mixup (0 = off)", minimum=0)
        if (self.augment or self.mixup > 0) and self.kd_logits == "cached":
            # Cached logits belong to the un-augmented samples; the teacher must label what the student sees.
            what = "augmentation" if self.augment else "mixup"
            raise OptionError(f"{what} needs --kd-logits live (the teacher labels the augmented samples)")
        check_int(self.threads, "threads", optional=True)

    def epochs_for(self, kind: str, role: str) -> int:
        base = self.epochs if self.epochs is not None else DEFAULT_EPOCHS[kind]
        if role != "teacher" and self.student_epochs is not None:
            return self.student_epochs
        return base

    def kd_params(self) -> dict[str, float]:
        if self.kd_loss == "dkd":
            return {"T": self.temperature, "alpha": self.alpha, "beta": self.dkd_beta}
        if self.kd_loss == "at":
            return {"T": self.temperature, "alpha": self.alpha, "beta": self.at_beta}
        return {"T": self.temperature, "alpha": self.alpha}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **kw) -> "TrainConfig":
        """The config with every non-None keyword replaced. `epochs` without `student_epochs` means every
        role, so it also drops a separate student schedule the base (e.g. a recipe) had; and an epoch
        count someone gives is passes over their data, so it drops the base's epoch floor too
        (`min_epoch_samples`) unless that is given as well."""
        changes = {k: v for k, v in kw.items() if v is not None}
        if "epochs" in changes and "student_epochs" not in changes:
            changes["student_epochs"] = None
        if "epochs" in changes and "min_epoch_samples" not in changes:
            changes["min_epoch_samples"] = None
        return replace(self, **changes)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _shift_axis(x: torch.Tensor, axis: int, gen: torch.Generator) -> torch.Tensor:
    """Shift the whole batch along `axis` by up to a tenth of its length, edge-replicated (not wrapped,
    so a motion is never reversed and nothing jumps across the border)."""
    length = x.shape[axis]
    max_shift = max(1, length // 10)
    shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=gen))
    if not shift:
        return x
    idx = (torch.arange(length) - shift).clamp(0, length - 1)
    return x.index_select(axis, idx)


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving augmentation for series (N, C, L) and clips/volumes (N, C, D, H, W):
    amplitude scaling, jitter, and a small shift along every axis after the channels (time for a
    series; time and both image axes for a clip, i.e. the usual random crop of video training)."""
    n = x.shape[0]
    view = (n,) + (1,) * (x.ndim - 1)
    scale = 1.0 + 0.1 * torch.randn(view, generator=gen)
    std = x.std().clamp_min(1e-6)
    x = x * scale + 0.03 * std * torch.randn(x.shape, generator=gen)
    for axis in range(2, x.ndim):
        x = _shift_axis(x, axis, gen)
    return x


def mix_batch(x: torch.Tensor, gen: torch.Generator, concentration: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): each sample blended with a shuffled partner by lam ~ Beta(m, m).
    Returns the mixed batch, the partner order and lam; the hard-label loss is then lam-weighted
    over both labels, while a live teacher labels the mixed sample itself (function matching)."""
    order = torch.randperm(x.shape[0], generator=gen)
    # numpy draws the Beta variate; its seed comes from the run's generator, so runs stay reproducible
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    lam = float(rng.beta(concentration, concentration))
    return lam * x + (1.0 - lam) * x[order], order, lam


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    model.eval()
    outs = []
    for i in range(0, len(X), batch_size):
        outs.append(model(torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size]))).float().numpy())
    if not outs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outs)


def accuracy(model: torch.nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    logits = predict_logits(model, X)
    return float((logits.argmax(1) == y).mean()) if len(y) else float("nan")


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): one scalar that minimises NLL on held-out data."""
    lt = torch.from_numpy(logits).float()
    yt = torch.from_numpy(y).long()
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lt / log_t.exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().clamp(0.05, 20.0))


@dataclass
class FitResult:
    model: torch.nn.Module
    seconds: float
    epochs: int
    steps: int = 0  # optimizer steps taken (epochs x steps per epoch)
    extra: dict[str, Any] = field(default_factory=dict)


def epoch_passes(n: int, min_epoch_samples: int | None) -> int:
    """Passes over an n-sample training set that make one epoch: 1, or enough to draw `min_epoch_samples`."""
    return max(1, math.ceil((min_epoch_samples or 0) / n)) if n else 1


def epoch_batch_sizes(n: int, cfg: "TrainConfig") -> list[int]:
    """The sizes of one epoch's batches, in order, for an n-sample training set under `cfg`."""
    total = n * epoch_passes(n, cfg.min_epoch_samples)
    bs = min(cfg.batch_size, total)  # a floor over a set smaller than the batch still fills full batches
    steps = max(1, math.ceil(total / bs))
    if cfg.even_batches:
        q, r = divmod(total, steps)
        return [q + 1] * r + [q] * (steps - r)
    return [bs] * (steps - 1) + [total - bs * (steps - 1)]


def _norm_mode(model: torch.nn.Module) -> str:
    return getattr(getattr(model, "norm", None), "mode", "dataset")


def _batch_source(X, norm_mode: str, teacher) -> Callable:
    """idx -> (the batch's inputs as the trainer feeds them, the samples' (offset, log-scale) or None).

    In "sample" and "sample_scale" modes the inputs are z-normalised per sample first. Augmentation and
    mixup act on the values they are given: jitter scaled to the whole batch's spread, or a blend of two
    series at different scales, drowns a small-scale series (PLAID spans 7e-5 to 49). The model
    z-normalises each sample itself, which no per-sample shift or scale changes, so training on
    pre-normalised samples changes nothing else in "sample" mode. "sample_scale" also reads each sample's
    scale: the batch goes back to its samples' own offset and scale after augmentation (mixup blends the
    log-scales with the same weight as the series). A live teacher that does not z-normalise each sample
    itself needs the real scale back too.
    In-memory inputs are prepared once; a streamed split (harness/tasks/streamed.py) a batch at a time,
    with the same per-sample arithmetic, so only the batch's rows are ever held.
    """
    from harness.tasks.streamed import is_streamed
    from harness.train.normalize import sample_moments, zscore_samples

    per_sample = norm_mode in ("sample", "sample_scale")
    with_moments = per_sample and (norm_mode == "sample_scale" or (teacher is not None and _norm_mode(teacher) != "sample"))
    if is_streamed(X):
        def fetch(idx: torch.Tensor):
            raw = X[idx.numpy()]
            moments = tuple(torch.from_numpy(a) for a in sample_moments(raw)) if with_moments else None
            return torch.from_numpy(zscore_samples(raw) if per_sample else raw), moments

        return fetch
    moments = tuple(torch.from_numpy(a) for a in sample_moments(X)) if with_moments else None
    Xt = torch.from_numpy(np.ascontiguousarray(zscore_samples(X) if per_sample else X, dtype=np.float32))
    return lambda idx: (Xt[idx], None if moments is None else (moments[0][idx], moments[1][idx]))


def fit(
    model: torch.nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    cfg: TrainConfig,
    epochs: int,
    seed: int,
    loss_fn: Callable | None = None,
    teacher: torch.nn.Module | None = None,
    teacher_logits: np.ndarray | None = None,
    teacher_temperature: float = 1.0,
    progress: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train `model` in place on (X, y). With `teacher` the KD loss sees live teacher logits on
    exactly the (augmented) batch; with `teacher_logits` it sees cached ones (row-aligned with X)."""
    gen = seed_everything(seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if hasattr(model, "fit_input_stats"):  # the built-in families normalise inside; a user's model as written
        model.fit_input_stats(X)
    norm_mode = _norm_mode(model)
    batch_of = _batch_source(X, norm_mode, teacher)
    loss_fn = loss_fn or build_loss("ce")
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    cached = torch.from_numpy(teacher_logits).float() / teacher_temperature if teacher_logits is not None else None
    n = len(yt)
    passes = epoch_passes(n, cfg.min_epoch_samples)
    sizes = epoch_batch_sizes(n, cfg)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    steps_per_epoch = len(sizes)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    if teacher is not None:
        teacher.eval()
    hooks: list = []
    t0 = time.perf_counter()
    try:
        feature_kw = _feature_capture(loss_fn, model, teacher, hooks)
        for epoch in range(epochs):
            model.train()
            perm = torch.cat([torch.randperm(n, generator=gen) for _ in range(passes)]) if passes > 1 else \
                torch.randperm(n, generator=gen)
            total, count = 0.0, 0
            for step in range(steps_per_epoch):
                idx = perm[bounds[step] : bounds[step + 1]]
                if len(idx) < 2:  # BatchNorm cannot train on a batch of one
                    sched.step()
                    continue
                (xb, moments), yb = batch_of(idx), yt[idx]
                if cfg.augment:
                    xb = augment_batch(xb, gen)
                lam, order = 1.0, None
                if cfg.mixup > 0:
                    xb, order, lam = mix_batch(xb, gen, cfg.mixup)
                if moments is not None:
                    offset, log_scale = moments
                    if order is not None:
                        offset = lam * offset + (1.0 - lam) * offset[order]
                        log_scale = lam * log_scale + (1.0 - lam) * log_scale[order]
                    xb = xb * torch.exp(log_scale) + offset
                if teacher is not None:
                    with torch.no_grad():
                        tl = teacher(xb) / teacher_temperature
                elif cached is not None:
                    tl = cached[idx]
                else:
                    tl = None
                out = model(xb)
                kw = feature_kw()
                loss = loss_fn(out, tl, yb, **kw)
                if order is not None:
                    loss = lam * loss + (1.0 - lam) * loss_fn(out, tl, yb[order], **kw)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            if progress is not None:
                progress(epoch + 1, total / max(count, 1))
    finally:
        for h in hooks:
            h.remove()
    seconds = time.perf_counter() - t0
    model.eval()
    return FitResult(model=model, seconds=seconds, epochs=epochs, steps=epochs * steps_per_epoch)


def _feature_capture(loss_fn, model, teacher, hooks: list):
    """For a loss that reads feature maps: forward hooks on both models' `body` (appended to `hooks` one by
    one, so the caller removes whatever was registered), and a function giving the loss its keyword
    arguments for the batch just run. Otherwise no hooks and no extra arguments."""
    if not getattr(loss_fn, "uses_features", False):
        return dict
    if teacher is None:
        raise OptionError("a feature-based KD loss needs the live teacher (--kd-logits live)")
    for who, m in (("student", model), ("teacher", teacher)):
        if not isinstance(getattr(m, "body", None), torch.nn.Module):
            raise OptionError(f"a feature-based KD loss reads the {who}'s feature maps from a submodule named "
                              f"'body', which this {who} has not; use --kd-loss hinton or dkd")
    maps: dict[str, torch.Tensor] = {}
    hooks.append(model.body.register_forward_hook(lambda _m, _i, out: maps.__setitem__("student", out)))
    hooks.append(teacher.body.register_forward_hook(lambda _m, _i, out: maps.__setitem__("teacher", out)))
    return lambda: {"student_features": maps["student"], "teacher_features": maps["teacher"]}
