"""Inspect: what did a rule do to the network? A checkpoint is found and read (checkpoints.py), its
network rebuilt and run on test samples with every layer recorded (recording.py; conv models in
conv.py), each layer described by the spike statistics of snncore.metrics (report.py), and its
weights followed over the run's checkpoints (history.py).

Named like the stdlib module on purpose only inside snncore: import it as `snncore.inspect` (or
relatively); a plain `import inspect` anywhere still gets the stdlib.
"""
from ..metrics import SATURATED_AT, SYNC_NEURONS  # noqa: F401 -- the statistics' defaults Inspect uses
from .checkpoints import (CONV_MODELS, SUPPORTED_MODELS, InspectError, check_supported,  # noqa: F401
                          checkpoint_config, checkpoint_unit, file_digest, load_checkpoint, run_checkpoint)
from .conv import (CONV_DATA_BATCH, CONV_NEURONS, CONV_SECONDS, RECORD_ELEMENTS,  # noqa: F401
                   conv_inspect_seconds, record_conv)
from .history import (checkpoint_weight_histograms, model_weights, run_weight_histograms,  # noqa: F401
                      weight_histograms)
from .recording import LayerRecord, Recording, lif_membrane, lif_pre_reset, record_network  # noqa: F401
from .report import LayerStats, analyse, layer_statistics, neuron_statistics, report  # noqa: F401
