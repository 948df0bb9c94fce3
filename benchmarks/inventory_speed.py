"""How long `inventory()` takes on GPT-2 124M, next to PyTorch's own walk over the same model.

    .venv/bin/python benchmarks/inventory_speed.py [--repeat 20]

Builds GPT-2 124M (Hugging Face Transformers, default config) on the meta device, so no
weights are allocated, then times, best of REPEAT runs:

- the baseline: PyTorch's own account, `named_parameters(remove_duplicate=False)`,
  `named_buffers(remove_duplicate=False)` and `state_dict()`;
- `inventory(model)`: the rows (the goal is under 50 ms);
- `str(inventory(model))` and `inventory(model)._repr_html_()`: the rows and their display.

The last line is `inventory on GPT-2 124M (meta): <ms> ms (goal 50 ms)`.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from buflesson import inventory


def gpt2_on_meta() -> torch.nn.Module:
    import transformers

    transformers.logging.set_verbosity_error()
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.GPT2LMHeadModel(transformers.GPT2Config())


def best_ms(work, repeat: int) -> float:
    """The fastest of `repeat` runs of `work()`, in milliseconds (one warm-up run first)."""
    work()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def pytorch_walk(model: torch.nn.Module) -> int:
    names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    names += [name for name, _ in model.named_buffers(remove_duplicate=False)]
    return len(names) + len(model.state_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    model = gpt2_on_meta()
    parameters = sum(p.numel() for p in model.parameters())
    table = inventory(model)
    print(f"model: GPT2LMHeadModel on meta, {parameters:,} parameters, {len(table)} rows")
    baseline = best_ms(lambda: pytorch_walk(model), args.repeat)
    rows = best_ms(lambda: inventory(model), args.repeat)
    text = best_ms(lambda: str(inventory(model)), args.repeat)
    page = best_ms(lambda: inventory(model)._repr_html_(), args.repeat)
    print(f"baseline, PyTorch's named_parameters + named_buffers + state_dict(): {baseline:.1f} ms")
    print(f"inventory(model), rows only:          {rows:.1f} ms ({rows / baseline:.1f}x the baseline)")
    print(f"str(inventory(model)), with the text: {text:.1f} ms")
    print(f"inventory(model)._repr_html_():       {page:.1f} ms")
    print(f"inventory on GPT-2 124M (meta): {rows:.1f} ms (goal 50 ms)")


if __name__ == "__main__":
    main()
