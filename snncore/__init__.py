"""snncore: the Plasticity Lab engine (PyTorch + SpikingJelly 2.0). Never imports streamlit."""
import logging

# SpikingJelly 2.0 looks for Triton kernels at import; on a CPU machine torch logs a harmless
# "Triton not available" warning twice, which would break the one-line error contract of the CLI.
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

__version__ = "0.1.0"
