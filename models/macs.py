"""Multiply-accumulates per sample, for the layer types users' models contain, or marked as not counted.

torch's FlopCounterMode counts the matrix products and convolutions it sees at the ATen level. Two kinds
of layer slip past it unless handled:
- fused fast paths: TransformerEncoderLayer and MultiheadAttention in eval mode without autograd run one
  fused kernel the counter does not know. Counting with autograd enabled (weights still frozen: nothing
  is stepped) takes their decomposed path, whose linear layers and attention products it does count.
- CPU recurrent kernels: nn.LSTM runs a fused kernel the counter never sees (GRU and RNN decompose into
  counted addmm calls). Recurrent layers the counter saw nothing of are counted by formula instead:
  gates x hidden x (input + hidden) per step, layer and direction (plus the projection of an LSTM with
  proj_size).
- scaled dot-product attention: on the CPU it runs a kernel (`_scaled_dot_product_flash_attention_for_cpu`)
  the counter has no formula for; it is given the counter's own formula for the GPU kernels.
Any other module with weights of its own in which the counter saw no product, and which is not a layer
that does no multiply-accumulates by nature (norms, embeddings), is reported by type in `not_counted`,
so a results file never shows a silently low figure.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from harness.errors import OptionError

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# Layers with weights that do no multiply-accumulates worth counting: affine scales, lookups.
_NO_MACS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.EmbeddingBag, nn.PReLU)


def _recurrent_macs(rnn: nn.RNNBase, steps: int) -> int:
    gates, hidden, dirs = _GATES[rnn.mode], rnn.hidden_size, 2 if rnn.bidirectional else 1
    out = rnn.proj_size or hidden
    total, width = 0, rnn.input_size
    for _ in range(rnn.num_layers):
        per_step = gates * hidden * (width + out) + (hidden * out if rnn.proj_size else 0)
        total += per_step * dirs * steps
        width = out * dirs
    return total


def _counter():
    """A FlopCounterMode that also knows the CPU attention kernel (the GPU ones it knows already)."""
    from torch.utils import flop_counter

    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    def cpu_sdpa_flops(query_shape, key_shape, value_shape, *_args, out_shape=None, **_kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    known = cpu_sdpa is not None and hasattr(flop_counter, "sdpa_flop_count")
    extra = {cpu_sdpa: cpu_sdpa_flops} if known else {}
    return flop_counter.FlopCounterMode(display=False, custom_mapping=extra)


def count_macs_detail(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """{"macs": per-sample MACs, "by_formula": {layer type: MACs counted by formula}, "not_counted":
    [layer types whose products could not be counted]} for one sample (a batch of 1, eval mode)."""
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d <= 0 for d in shape):
        raise OptionError(f"input_shape must be positive sizes without the batch axis, got {tuple(input_shape)}")
    steps: dict[str, int] = {}
    hooks = []

    def seen(name: str):
        def hook(module, args):
            x = args[0]
            if isinstance(x, torch.Tensor):
                steps[name] = int(x.shape[1] if module.batch_first or x.dim() == 2 else x.shape[0]) \
                    if x.dim() == 3 else int(x.shape[0])
        return hook

    modules = dict(model.named_modules())
    called: set[str] = set()
    for name, m in modules.items():
        hooks.append(m.register_forward_pre_hook(lambda _m, _a, name=name: called.add(name)))
        if isinstance(m, nn.RNNBase):
            hooks.append(m.register_forward_pre_hook(seen(name)))
    was_training = model.training
    try:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
        x = torch.zeros((1,) + shape, dtype=torch.float32, device=device)
        model.eval()
        counter = _counter()
        with torch.enable_grad(), counter:
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    # The counter names modules by the root's class name, then the dotted submodule path.
    root = type(model).__name__
    counts = counter.get_flop_counts()

    def flops(name: str) -> int:
        return int(sum(counts.get(f"{root}.{name}" if name else root, {}).values()))

    macs = int(counter.get_total_flops() // 2)
    by_formula: dict[str, int] = {}
    covered: list[str] = []
    for name, m in modules.items():
        if isinstance(m, nn.RNNBase) and name in steps and flops(name) == 0:
            extra = _recurrent_macs(m, steps[name])
            macs += extra
            by_formula[type(m).__name__] = by_formula.get(type(m).__name__, 0) + extra
            covered.append(name)
    not_counted = set()
    for name, m in modules.items():
        if isinstance(m, _NO_MACS) or any(name == c or name.startswith(c + ".") for c in covered):
            continue
        # A module never called as one (MultiheadAttention's out_proj) lends its weights to its parent's ops.
        own = sum(p.numel() for p in m.parameters(recurse=False))
        if own and name in called and flops(name) == 0:
            not_counted.add(type(m).__name__)
    return {"macs": macs, "by_formula": by_formula, "not_counted": sorted(not_counted)}


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates for one sample (count_macs_detail's figure)."""
    return count_macs_detail(model, input_shape)["macs"]
