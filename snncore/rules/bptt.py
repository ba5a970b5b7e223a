"""bptt: surrogate-gradient backpropagation through time, no local rule.

The baseline every rule is compared with. The loss is cross-entropy on the read-out's mean
membrane potential (or mean firing rate) over T; the surrogate replaces dTheta/dH in the
backward pass (SpikingJelly's sigmoid, alpha=4, or arctan, alpha=2). All hooks are empty.
Source: Neftci, Mostafa, Zenke, "Surrogate gradient learning in SNNs", IEEE SPM 2019;
Wu et al., "Spatio-temporal backpropagation", Front. Neurosci. 2018.
"""
from .base import Rule


class BPTT(Rule):
    name = "bptt"
    conv_targets = None           # runs on conv models; changes no layer itself
    summary = "Surrogate-gradient BPTT only (the baseline)."
    baseline = True
