"""buflesson: learn what a PyTorch module keeps as state, with checked exercises."""

from buflesson.checks import check, exercises
from buflesson.devices import DeviceChoice, pick_device
from buflesson.inventory import Inventory, TensorRow, inventory
from buflesson.models import (
    BufferOffset,
    PlainOffset,
    PlainProjection,
    Standardize,
    buffer_offset_model,
    plain_offset_model,
    plain_projection_model,
    sample_input,
    standardize_model,
)
from buflesson.results import CheckResult

__version__ = "0.1.0"

__all__ = [
    "BufferOffset",
    "CheckResult",
    "DeviceChoice",
    "Inventory",
    "PlainOffset",
    "PlainProjection",
    "Standardize",
    "TensorRow",
    "buffer_offset_model",
    "check",
    "exercises",
    "inventory",
    "pick_device",
    "plain_offset_model",
    "plain_projection_model",
    "sample_input",
    "standardize_model",
]
