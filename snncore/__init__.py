"""snncore: the Plasticity Lab engine (PyTorch + SpikingJelly 2.0). Never imports streamlit."""
import logging

# SpikingJelly 2.0 looks for Triton kernels at import; on a CPU machine torch logs a harmless
# "Triton not available" warning twice, which would break the one-line error contract of the CLI.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

__version__ = "0.1.0"

# The Python API (snncore/api.py), loaded on first use: `import snncore` stays light, and the CLI
# sets its thread budget before torch loads. Three of its names are also submodules (snncore.train
# the Trainer, snncore.compare the seed groups, snncore.lab Rule Lab): `from snncore import compare`
# must stay the module, and `sc.train(...)` / `sc.compare([...])` must call the API, so such a
# submodule, once bound on the package, is made callable (calling it calls snncore.api's function).
import sys as _sys
import types as _types

_API = ("train", "load", "runs", "compare", "make_config", "Run", "Spikes", "sweep", "sweeps", "Sweep")
_CALLS = ("train", "load", "runs", "compare", "sweeps")


class _CallableModule(_types.ModuleType):
    """A submodule whose name is an API call: the module as before, callable as snncore.api.<name>
    (see help(snncore.api.<name>))."""

    def __call__(self, *args, **kwargs):
        from . import api
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(_types.ModuleType):
    def __setattr__(self, name, value):
        # the import system binds each submodule on its package with setattr
        if name in _CALLS and type(value) is _types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
for _name in _CALLS:                     # a submodule bound before this line (none today)
    if type(_sys.modules.get(f"{__name__}.{_name}")) is _types.ModuleType:
        _sys.modules[f"{__name__}.{_name}"].__class__ = _CallableModule


def __getattr__(name: str):
    if name in _API:
        import importlib
        if "torch" not in _sys.modules:  # the run's thread budget before torch and Numba load (threads.py)
            from .threads import set_env
            set_env()
        try:                             # a submodule of that name: it, made callable on binding
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
        from . import api
        return getattr(api, name)
    if name == "lab":                    # Rule Lab: sc.lab.simulate(rule, **params), res.figures
        import importlib
        return importlib.import_module(".lab", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_API, "lab", "__version__"]
