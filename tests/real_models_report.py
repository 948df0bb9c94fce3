"""How many real models `inventory` matches PyTorch's account on, and where `audit` raises alarms.

    .venv/bin/python tests/real_models_report.py              # the zoo of tests/model_zoo.py
    .venv/bin/python tests/real_models_report.py --all-transformers [--start 0 --stop 700]

The zoo: one line per model (`ok` when `tests/pytorch_account.mismatches` finds nothing), audit's
verdict on the clean models, and the totals. `--all-transformers` builds every model class of
Transformers' AutoModel mapping from its default config on the `meta` device (no memory, no
download) and reports the models where inventory disagrees with PyTorch, audit finds something,
or the text is wider than 100 columns. Not a test: a measurement, printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.simplefilter("ignore")

from buflesson import audit, inventory  # noqa: E402

from model_zoo import BUGGY, CLEAN  # noqa: E402
from pytorch_account import mismatches  # noqa: E402


def zoo() -> None:
    matched = alarms = 0
    models = [(name, build, None) for name, build in CLEAN.items()]
    models += [(name, build, expected) for name, (build, expected) in BUGGY.items()]
    for name, build, expected in models:
        try:
            model = build()
            found = mismatches(model)
            verdict = audit(model)
        except Exception as error:  # a crash is a mismatch too
            found, verdict = [f"raised {type(error).__name__}: {error}"], None
        matched += not found
        if expected is None:
            alarms += 0 if verdict is None or verdict.ok else len(verdict.findings)
            said = "silent" if verdict is not None and verdict.ok else "ALARM"
        else:
            said = "finds the bug" if verdict is not None and verdict.problems() == expected else "MISSES"
        print(f"{'ok ' if not found else 'BAD'} {name:45} audit: {said}")
        for line in found[:3]:
            print(f"      {line[:120]}")
    print(f"inventory matches PyTorch's account on {matched} of {len(models)} models")
    print(f"audit findings on the {len(CLEAN)} clean models: {alarms}")


def all_transformers(start: int, stop: int) -> None:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    transformers.logging.set_verbosity_error()

    def timeout(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    counts = {"built": 0, "not built": 0, "matched": 0, "audit silent": 0}
    for key in sorted(MODEL_MAPPING_NAMES)[start:stop]:
        names = MODEL_MAPPING_NAMES[key]
        class_name = names[0] if isinstance(names, tuple) else names
        try:
            signal.alarm(30)
            config = getattr(transformers, CONFIG_MAPPING_NAMES[key])()
            with torch.device("meta"):
                model = getattr(transformers, class_name)(config)
        except Exception:
            counts["not built"] += 1
            continue
        finally:
            signal.alarm(0)
        counts["built"] += 1
        found = mismatches(model)
        verdict = audit(model)
        width = max(len(line) for line in str(inventory(model)).splitlines())
        counts["matched"] += not found
        counts["audit silent"] += verdict.ok
        if found or not verdict.ok or width > 100:
            print(f"{key}: {found[:2]} {list(verdict.problems().items())[:2]} width {width}", flush=True)
    print(", ".join(f"{what}: {count}" for what, count in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all-transformers", action="store_true")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=10_000)
    args = parser.parse_args()
    if args.all_transformers:
        all_transformers(args.start, args.stop)
    else:
        zoo()


if __name__ == "__main__":
    main()
