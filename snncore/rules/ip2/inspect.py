"""IP2 in Inspect: its task checkpoints keep the recurrent network inside the learning loop's state
(key "loop"; runs written before the plugin interface used "ip2"), not in state["model"]."""
from __future__ import annotations

import torch


def _loop(state: dict | None) -> dict | None:
    point = (state or {}).get("loop")
    if not isinstance(point, dict):
        point = (state or {}).get("ip2")
    return point if isinstance(point, dict) else None


def supports(cfg, state: dict | None) -> bool:
    """True when the checkpoint carries the RSNN (or no checkpoint is given yet)."""
    if state is None or _loop(state) is not None:
        return True
    from ...inspect import InspectError
    raise InspectError("this IP2 checkpoint was written before task checkpoints carried the recurrent "
                       "network, so there is nothing to re-run (resume or repeat the run to get one)")


@torch.no_grad()
def record(state: dict, cfg, n_samples: int, seed: int):
    """The recurrent network of the task boundary the checkpoint holds, run on n_samples trials of
    the next task of its family (the task it would learn next). Layers: "rsnn" (its input and
    recurrent synapses, pre = [x_t, s_{t-1}]; membrane u) and "out" (the read-out y, not spiking)."""
    from ...inspect import InspectError, LayerRecord, Recording
    from . import L2LRunner
    point = _loop(state)
    mask = point.get("mask") or point.get("current", "").split("+")
    try:
        r = L2LRunner(cfg.rule_object_params(), [m for m in mask if m], cfg.seed)
        r.load_state_dict(point["sequence"]["runner"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise InspectError(f"the checkpoint's recurrent network does not fit its config: "
                           f"{str(e).strip().splitlines()[0][:200]}") from None
    task = r.family.new_task()
    x, target, lmask = task.batch(max(1, int(n_samples)), torch.Generator().manual_seed(seed))
    m = r.model
    y, rec = m(x, record=True)
    s = rec["s"]
    s_prev = torch.cat([torch.zeros_like(s[:1]), s[:-1]])
    W = torch.cat([m.W_in, m.W_rec], 1)
    layers = {
        "rsnn": LayerRecord("rsnn", pre=torch.cat([x, s_prev], -1).numpy(), post=s.numpy() != 0,
                            v=rec["u"].float().numpy(), weight=W.detach().float().numpy(), spiking=True,
                            v_threshold=float(m.theta.mean())),
        "out": LayerRecord("out", pre=s.numpy() != 0, post=y.numpy() > 0, v=y.float().numpy(),
                           weight=m.W_out.detach().float().numpy(), spiking=False)}
    sel = lmask & (target >= 0)
    return Recording(cfg=cfg, layers=layers, labels=target[sel].numpy(), predictions=y.argmax(-1)[sel].numpy(),
                     epoch=state.get("tasks_done"), step=state.get("step"),
                     samples=int(x.shape[1]), timesteps=int(x.shape[0]), unit="task",
                     extra={"note": f"IP2: {x.shape[1]} trials of the next task of family "
                                    f"{cfg.rule_object_params().family!r}; accuracy over the scored steps"})


def weights(state: dict) -> dict | None:
    """The RSNN in the loop state's runner: input, recurrent and read-out weights."""
    point = _loop(state)
    w = (((point or {}).get("sequence") or {}).get("runner") or {}).get("model") or {}
    if "W_rec" not in w:
        return None
    return {"in": w["W_in"], "rec": w["W_rec"], "out": w["W_out"]}
