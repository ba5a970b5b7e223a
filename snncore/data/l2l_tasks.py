"""The l2l_tasks dataset: a family of tasks for learning to learn, generated, never read from disk.

A family has a fixed rule; each new task draws fresh stimuli (STIM_DIM-d unit vectors, Gram-Schmidt
orthogonalised, injected as constant currents while shown) from the family's own seed. A fixation
input is on until the response epoch; the outputs are channel 0 = fixation plus the response
channels. Families (generators ours; timing is the reduced one, T steps):
  gng_dr  GNG-DR-n: n images, each mapped to its own response channel 1..n; with p_nogo > 0 a no-go
          cue during the response epoch asks to hold fixation (channel 0) on that share of trials
  dms     delayed match to sample: sample, delay, test; respond 1 = match, 2 = non-match
  cd_dms  DMS plus a two-channel context: A reports match, B non-match
Epochs: stimulus [0, stim) with stim = max(1, T//4); response [resp, T) with resp =
max(stim + 1, 3T//4), its first max(1, T//20) steps a grace masked out of the loss; the DMS test
shown in [T//2, resp). T = 20: stimulus 0-4, fixation 0-14, response 15-19, grace step 15.

Unlike the other datasets it has no fixed samples (no DataBundle): a rule that requires it runs its
own loop and draws tasks with make_family(name, ...).new_task().batch(B, generator).
"""
from __future__ import annotations

import torch

STIM_DIM = 10
DESCRIPTION = "a generated family of tasks for learning to learn (new stimuli per task, one fixed rule)"


def _orthonormal(n: int, dim: int, g: torch.Generator) -> torch.Tensor:
    """n random unit vectors of size dim, Gram-Schmidt orthogonalised (QR), as rows [n, dim]."""
    q, _ = torch.linalg.qr(torch.randn(dim, n, generator=g))
    return q.T.contiguous()


class Task:
    """One task: fixed stimuli under the family's rule. .batch(B, generator) -> (x, target, mask)."""

    def __init__(self, family: "TaskFamily", stimuli: torch.Tensor, index: int):
        self.family = family
        self.stimuli = stimuli          # [n_img, 10]
        self.index = index              # 1-based task number within the family

    def batch(self, B: int, generator: torch.Generator | None = None):
        fam = self.family
        T, D = fam.T, fam.D
        g = generator
        n = fam.n_img
        ep = fam.epochs
        x = torch.zeros(T, B, D)
        target = torch.zeros(T, B, dtype=torch.long)     # channel 0 = fixation
        mask = torch.ones(T, B, dtype=torch.bool)
        mask[ep["resp"]:ep["resp"] + ep["grace"]] = False
        x[:ep["resp"], :, STIM_DIM] = 1.0                 # fixation input until the response epoch
        if fam.name == "gng_dr":
            img = torch.randint(0, n, (B,), generator=g)
            x[:ep["stim"], :, :STIM_DIM] = self.stimuli[img]
            resp = 1 + img
            if fam.p_nogo > 0:
                nogo = torch.rand(B, generator=g) < fam.p_nogo
                x[ep["resp"]:, :, STIM_DIM + 1] = nogo.float()
                resp = torch.where(nogo, torch.zeros_like(resp), resp)
            target[ep["resp"]:] = resp
        else:   # dms / cd_dms
            sample = torch.randint(0, n, (B,), generator=g)
            match = torch.rand(B, generator=g) < 0.5
            other = (sample + torch.randint(1, n, (B,), generator=g)) % n
            test = torch.where(match, sample, other)
            x[:ep["stim"], :, :STIM_DIM] = self.stimuli[sample]
            x[ep["test0"]:ep["test1"], :, :STIM_DIM] = self.stimuli[test]
            report1 = match
            if fam.name == "cd_dms":
                ctx_b = torch.rand(B, generator=g) < 0.5
                x[:ep["resp"], :, STIM_DIM + 1] = (~ctx_b).float()
                x[:ep["resp"], :, STIM_DIM + 2] = ctx_b.float()
                report1 = match ^ ctx_b
            target[ep["resp"]:] = torch.where(report1, 1, 2)
        return x, target, mask


class TaskFamily:
    """A task family: fixed rule, fresh stimuli per task (drawn from the family's own seed)."""

    NAMES = ("gng_dr", "dms", "cd_dms")

    def __init__(self, name: str, *, n_img: int = 2, p_nogo: float = 0.5, seed: int = 0, T: int = 20):
        if name not in self.NAMES:
            raise ValueError(f"unknown task family {name!r} (choose from {', '.join(self.NAMES)})")
        if n_img < 2 or n_img > STIM_DIM:
            raise ValueError(f"n_img must be in 2..{STIM_DIM}, got {n_img}")
        if T < 4:
            raise ValueError(f"T must be >= 4, got {T}")
        self.name, self.n_img, self.p_nogo, self.T = name, int(n_img), float(p_nogo), int(T)
        self.D = STIM_DIM + 1 + {"gng_dr": 1, "dms": 0, "cd_dms": 2}[name]
        self.O = (n_img + 1) if name == "gng_dr" else 3
        stim = max(1, T // 4)
        resp = max(stim + 1, (3 * T) // 4)
        self.epochs = {"stim": stim, "resp": resp, "grace": max(1, T // 20),
                       "test0": T // 2, "test1": resp}
        self._g = torch.Generator().manual_seed(int(seed))
        self._count = 0

    def new_task(self) -> Task:
        self._count += 1
        return Task(self, _orthonormal(self.n_img, STIM_DIM, self._g), self._count)


def make_family(name: str, *, n_img: int = 2, p_nogo: float = 0.5, seed: int = 0, T: int = 20) -> TaskFamily:
    """"gng_dr" (GNG-DR-n), "dms", "cd_dms". family.new_task().batch(B, generator) ->
    (x [T,B,D], target [T,B] long, loss_mask [T,B] bool)."""
    return TaskFamily(name, n_img=n_img, p_nogo=p_nogo, seed=seed, T=T)
