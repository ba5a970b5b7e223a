"""Old path of Inspect, kept so its importers keep working: checkpoint loading, recording, reports and
weight histories now live in snncore.inspect, the spike statistics in snncore.metrics."""
from .inspect import (CONV_DATA_BATCH, CONV_MODELS, CONV_NEURONS, CONV_SECONDS, RECORD_ELEMENTS,  # noqa: F401
                      SUPPORTED_MODELS, InspectError, LayerRecord, LayerStats, Recording, analyse,
                      check_supported, checkpoint_config, checkpoint_unit, checkpoint_weight_histograms,
                      conv_inspect_seconds, file_digest, layer_statistics, lif_membrane, lif_pre_reset,
                      load_checkpoint, model_weights, neuron_statistics, record_network, report,
                      run_checkpoint, run_weight_histograms, weight_histograms)
from .metrics import (SATURATED_AT, SYNC_NEURONS, chi, conv_dense_macs, conv_fan_out,  # noqa: F401
                      conv_out_size, conv_synops, correlation_matrix, fano_factors, firing_rates, isi_cv,
                      isi_per_neuron, mean_pairwise_correlation, silent_saturated, sparsity,
                      spike_contrast_sync, spike_times, synops)
