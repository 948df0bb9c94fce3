"""buflesson: learn what a PyTorch module keeps as state, with checked exercises.

The public names below are imported when first used (module `__getattr__`), so `import buflesson`
costs almost nothing beyond `import torch`, and matplotlib is loaded only by the figures.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it (the same names as `__all__`).
_WHERE = {
    "Audit": "audit",
    "Finding": "audit",
    "audit": "audit",
    "check": "checks",
    "DeviceChoice": "devices",
    "pick_device": "devices",
    "language": "i18n",
    "Inventory": "inventory",
    "TensorRow": "inventory",
    "inventory": "inventory",
    "BufferOffset": "models",
    "PlainOffset": "models",
    "PlainProjection": "models",
    "PlainScale": "models",
    "Standardize": "models",
    "buffer_offset_model": "models",
    "plain_offset_model": "models",
    "plain_projection_model": "models",
    "plain_scale_model": "models",
    "sample_input": "models",
    "standardize_model": "models",
    "ListTower": "real_models",
    "tiny_bert": "real_models",
    "tiny_gpt2": "real_models",
    "tiny_llama": "real_models",
    "tiny_resnet": "real_models",
    "tiny_t5": "real_models",
    "Everything": "recap",
    "everything_model": "recap",
    "training_batch": "recap",
    "training_step": "recap",
    "CheckResult": "results",
    "plot_running_mean": "running_stats",
    "running_mean_trace": "running_stats",
    "seeded_batches": "running_stats",
    "state_map": "state_map",
    "SensorV1": "versions",
    "SensorV2": "versions",
    "sensor_readings": "versions",
    "sensor_v1_model": "versions",
    "PinnedMask": "wild",
    "StaleStats": "wild",
    "UnsavedPeak": "wild",
}

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


def _public(name: str) -> object:
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


def __getattr__(name: str) -> object:
    """Import the module that defines a public name on first use, and keep the name here."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = _public(name)
    return value


class _Package(types.ModuleType):
    """Keeps a public name bound to the public object when a submodule of the same name is imported.

    Python binds `buflesson.inventory` to the submodule when `buflesson.inventory` is first imported;
    here the function `inventory` (defined in that submodule) stays the package's `inventory`, as it
    did with eager imports.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if _WHERE.get(name) == name and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
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
