"""snncore: the Plasticity Lab engine (PyTorch + SpikingJelly 2.0). Never imports streamlit."""
__version__ = "0.1.0"
