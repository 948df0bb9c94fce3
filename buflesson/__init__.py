"""buflesson: learn what a PyTorch module keeps as state, with checked exercises."""

from buflesson.audit import Audit, Finding, audit
from buflesson.checks import check
from buflesson.devices import DeviceChoice, pick_device
from buflesson.i18n import language
from buflesson.inventory import Inventory, TensorRow, inventory
from buflesson.models import (
    BufferOffset,
    PlainOffset,
    PlainProjection,
    PlainScale,
    Standardize,
    buffer_offset_model,
    plain_offset_model,
    plain_projection_model,
    plain_scale_model,
    sample_input,
    standardize_model,
)
from buflesson.real_models import ListTower, tiny_bert, tiny_gpt2, tiny_llama, tiny_resnet, tiny_t5
from buflesson.recap import Everything, everything_model, training_batch, training_step
from buflesson.results import CheckResult
from buflesson.running_stats import plot_running_mean, running_mean_trace, seeded_batches
from buflesson.state_map import state_map
from buflesson.versions import SensorV1, SensorV2, sensor_readings, sensor_v1_model
from buflesson.wild import PinnedMask, StaleStats, UnsavedPeak

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "BufferOffset",
    "CheckResult",
    "DeviceChoice",
    "Everything",
    "Finding",
    "Inventory",
    "ListTower",
    "PinnedMask",
    "PlainOffset",
    "PlainProjection",
    "PlainScale",
    "SensorV1",
    "SensorV2",
    "StaleStats",
    "Standardize",
    "TensorRow",
    "UnsavedPeak",
    "audit",
    "buffer_offset_model",
    "check",
    "everything_model",
    "inventory",
    "language",
    "pick_device",
    "plain_offset_model",
    "plain_projection_model",
    "plain_scale_model",
    "plot_running_mean",
    "running_mean_trace",
    "sample_input",
    "seeded_batches",
    "sensor_readings",
    "sensor_v1_model",
    "standardize_model",
    "state_map",
    "tiny_bert",
    "tiny_gpt2",
    "tiny_llama",
    "tiny_resnet",
    "tiny_t5",
    "training_batch",
    "training_step",
]
