"""Shared test set-up: skip Jupyter's checkpoint copies when nbval collects notebooks."""

collect_ignore_glob = ["**/.ipynb_checkpoints/*"]
