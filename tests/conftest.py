"""Shared test set-up: what nbval must not collect as a lesson notebook."""

# Jupyter's checkpoint copies, and the grader's fixture course (its checks exist only in the grader).
collect_ignore_glob = ["**/.ipynb_checkpoints/*", "fixtures/*"]
