"""Model registry: build_model(cfg, input_size, n_classes, input_shape) -> nn.Module with .layer_traces().

input_shape is the per-time-step sample shape ((C, H, W) for images; () for flat data); conv models
reshape their [T, B, D] input to [T, B, C, H, W] with it.
"""
from __future__ import annotations


def build_model(cfg, input_size: int, n_classes: int, input_shape: tuple = ()):
    if cfg.model == "mlp":
        from .mlp import SpikingMLP
        return SpikingMLP(input_size, list(cfg.hidden), n_classes, tau=cfg.tau,
                          v_threshold=cfg.v_threshold, v_reset=cfg.v_reset,
                          surrogate=cfg.surrogate, alpha=cfg.surrogate_alpha, readout=cfg.readout)
    if cfg.model == "mps_mlp":
        from .mps_net import MPSNet
        return MPSNet.from_params([input_size, *cfg.hidden, n_classes], cfg.timesteps, cfg.rule_object_params())
    if cfg.model in ("vgg11", "resnet19"):
        from .conv import build_conv
        return build_conv(cfg.model, input_shape, n_classes, hidden=list(cfg.hidden),
                          width=getattr(cfg, "width", 1.0), tau=cfg.tau, v_threshold=cfg.v_threshold,
                          v_reset=cfg.v_reset, surrogate=cfg.surrogate, alpha=cfg.surrogate_alpha,
                          readout=cfg.readout)
    raise ValueError(f"model: unknown model {cfg.model!r}")
