"""Distillation losses in one registry (torchdistill style): name -> factory(**params) -> loss fn.

Every loss has the signature `loss(student_logits, teacher_logits, targets) -> scalar tensor`. A loss that
also reads intermediate feature maps (attention transfer) sets `loss.uses_features = True` and takes
`student_features=` and `teacher_features=`: each model's `body` output for the same batch (N x C x ...),
which the training loop captures with forward hooks. Such a loss needs the live teacher.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from harness.errors import OptionError

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_LOSSES: dict[str, Callable[..., LossFn]] = {}


def register_loss(name: str):
    def deco(factory):
        _LOSSES[name] = factory
        return factory

    return deco


def loss_names() -> list[str]:
    return sorted(_LOSSES)


def build_loss(name: str, **params) -> LossFn:
    if name not in _LOSSES:
        raise OptionError(f"unknown KD loss {name!r}; known: {', '.join(loss_names())}")
    return _LOSSES[name](**params)


def check_temperature(T: float) -> float:
    if not (isinstance(T, (int, float)) and T > 0 and T == T and T != float("inf")):
        raise OptionError(f"temperature must be a positive finite number, got {T!r}")
    return float(T)


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise OptionError(f"alpha must be in [0, 1], got {alpha!r}")
    return float(alpha)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(p_teacher^T || p_student^T), batch mean: the gradient Hinton et al. (2015) describe."""
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)


@register_loss("hinton")
def hinton(T: float = 4.0, alpha: float = 0.5, **_: float) -> LossFn:
    """alpha * T^2 * KL + (1 - alpha) * CE. T^2 keeps soft-target gradients on the CE scale as T grows."""
    T, alpha = check_temperature(T), check_alpha(alpha)

    def loss(student_logits, teacher_logits, targets):
        kd = soft_kl(student_logits, teacher_logits, T) * (T * T)
        ce = F.cross_entropy(student_logits, targets)
        return alpha * kd + (1.0 - alpha) * ce

    return loss


@register_loss("dkd")
def dkd(T: float = 4.0, alpha: float = 1.0, beta: float = 8.0, ce_weight: float = 1.0, **_: float) -> LossFn:
    """Decoupled KD (Zhao et al., CVPR 2022): CE + alpha*TCKD + beta*NCKD, both scaled by T^2.

    TCKD is the binary KL between (p_target, 1 - p_target) of teacher and student; NCKD is the KL
    between their distributions over the non-target classes. Here `alpha` weighs TCKD (mdistiller's
    naming), not the Hinton mix.
    """
    T = check_temperature(T)
    if alpha < 0 or beta < 0 or ce_weight < 0:
        raise OptionError("DKD weights alpha, beta and ce_weight must be >= 0")

    def loss(student_logits, teacher_logits, targets):
        return ce_weight * F.cross_entropy(student_logits, targets) + dkd_terms(
            student_logits, teacher_logits, targets, T, alpha, beta
        )

    return loss


def dkd_terms(s: torch.Tensor, t: torch.Tensor, targets: torch.Tensor, T: float, alpha: float, beta: float):
    gt = F.one_hot(targets, s.shape[1]).to(s.dtype)
    p_s = F.softmax(s / T, dim=1)
    p_t = F.softmax(t / T, dim=1)
    # Binary (target vs rest) distributions.
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * (1 - gt)).sum(1)], dim=1).clamp_min(1e-12)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * (1 - gt)).sum(1)], dim=1).clamp_min(1e-12)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1).mean() * T * T
    # Non-target distributions: mask the target logit out with a large negative number.
    mask = gt * 1000.0
    log_q_s = F.log_softmax(s / T - mask, dim=1)
    log_q_t = F.log_softmax(t / T - mask, dim=1)
    q_t = log_q_t.exp()
    nckd = (q_t * (log_q_t - log_q_s) * (1 - gt)).sum(1).mean() * T * T
    return alpha * tckd + beta * nckd


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis (2017) spatial attention: the channel mean of squared activations, N x spatial."""
    return features.pow(2).mean(dim=1)


def attention_distance(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two L2-normalised attention maps. Maps of different spatial size (a
    student with fewer strided stages than its teacher) are average-pooled to the smaller size first."""
    a_s, a_t = attention_map(student_features), attention_map(teacher_features)
    if a_s.shape[1:] != a_t.shape[1:]:
        size = tuple(min(i, j) for i, j in zip(a_s.shape[1:], a_t.shape[1:]))
        pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[len(size)]
        a_s, a_t = pool(a_s.unsqueeze(1), size).squeeze(1), pool(a_t.unsqueeze(1), size).squeeze(1)
    a_s, a_t = F.normalize(a_s.flatten(1), dim=1), F.normalize(a_t.flatten(1), dim=1)
    return (a_s - a_t).pow(2).mean()


@register_loss("at")
def attention_transfer(T: float = 4.0, alpha: float = 0.5, beta: float = 10.0, **_: float) -> LossFn:
    """Hinton's loss plus attention transfer on the last feature maps: hinton + beta/2 * attention distance
    (Zagoruyko & Komodakis 2017). A feature-based term: where the teacher looks along the series (or in the
    clip), not only what it answers. Their beta of 1000 was for image maps; see TrainConfig.at_beta."""
    base = hinton(T=T, alpha=alpha)
    if not (isinstance(beta, (int, float)) and beta >= 0):
        raise OptionError(f"attention transfer beta must be >= 0, got {beta!r}")

    def loss(student_logits, teacher_logits, targets, *, student_features=None, teacher_features=None):
        if student_features is None or teacher_features is None:
            raise OptionError("attention transfer needs both models' feature maps (--kd-logits live)")
        return base(student_logits, teacher_logits, targets) + (beta / 2.0) * attention_distance(
            student_features, teacher_features)

    loss.uses_features = True
    return loss


FEATURE_LOSSES = ("at",)  # losses that read feature maps: they need the live teacher


@register_loss("ce")
def ce_only(**_: float) -> LossFn:
    """Plain cross-entropy: the scratch student's loss, so every role trains through one code path."""

    def loss(student_logits, teacher_logits, targets):
        return F.cross_entropy(student_logits, targets)

    return loss
