"""Spike statistics used by the trainer, Inspect and the app (pure functions, time first): rates, CV of
ISI, Fano factor (spikes.py), synchrony chi, pairwise correlation, spike-contrast (synchrony.py),
SynOps (synops.py)."""
from .spikes import (SATURATED_AT, as_spikes, fano_factors, firing_rates, isi_cv, isi_per_neuron,  # noqa: F401
                     silent_saturated, sparsity, spike_times, subsample)
from .synchrony import (SYNC_NEURONS, chi, chi_synchrony, correlation_matrix, firing_rate,  # noqa: F401
                        mean_pairwise_correlation, spike_contrast_sync)
from .synops import conv_dense_macs, conv_fan_out, conv_out_size, conv_synops, synops  # noqa: F401
