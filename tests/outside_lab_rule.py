"""A rule from outside snncore with a Rule Lab part, for tests: pair STDP under another name whose
lab() is STDP's LabSpec retitled (a one-module rule names its Rule Lab part through lab())."""
import dataclasses

from snncore.rules.stdp import STDP


class LabbedSTDP(STDP):
    name = "labbed_stdp"

    @classmethod
    def lab(cls):
        from snncore.rules.stdp.lab import LAB
        return dataclasses.replace(LAB, title="outside STDP (a test rule)")
