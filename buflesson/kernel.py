"""The project's Jupyter kernel, "Python (buflesson)": IPython with buflesson's extension loaded.

`install_kernelspec()` (run by `make`, `buflesson lab`, or `python -m buflesson.kernel`) registers the
kernel in the virtual environment with `--IPKernelApp.extensions=buflesson.kernel`, so every lesson
kernel calls `load_ipython_extension` at start. That function is only a loader: each feature lives in its own
module with an `install(ip)` function, listed in FEATURES. A feature that changes how errors look
wraps `ip.InteractiveTB.structured_traceback` and hands the errors it leaves alone to the function
it wrapped, so features compose.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

KERNEL_NAME = "buflesson"
DISPLAY_NAME = "Python (buflesson)"
EXTENSION_ARGUMENT = "--IPKernelApp.extensions=buflesson.kernel"
# In this order: tracebacks imports torch; warmup then loads torch's lazy parts in the background;
# guidance wraps the short tracebacks, so its line stands above them.
FEATURES = ("buflesson.tracebacks", "buflesson.warmup", "buflesson.guidance")


def load_ipython_extension(ip) -> None:
    """Install every feature in the IPython shell `ip` (IPython calls this for `%load_ext`)."""
    for name in FEATURES:
        importlib.import_module(name).install(ip)


def install_kernelspec(prefix: str | None = None) -> Path:
    """Register the kernel under `prefix` (default: this Python's environment); return its folder."""
    from ipykernel.kernelspec import install

    folder = Path(install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=prefix or sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    spec["argv"] = [arg for arg in spec["argv"] if not arg.startswith("--IPKernelApp.extensions=")]
    spec["argv"].append(EXTENSION_ARGUMENT)
    spec_file.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return folder


if __name__ == "__main__":
    print(install_kernelspec())
