#!/usr/bin/env bash
# Grade a course's submissions on a Slurm cluster: one shard per array task, then one merge.
#
#   examples/slurm-grade.sh SUBMISSIONS OUT_DIR [SHARDS]     (on the login node, from the repository)
#
# submits an array of SHARDS tasks (default 4), task I running
#   buflesson grade SUBMISSIONS --out OUT_DIR/shard-I --shard I/SHARDS
# and a merge job that starts when every task has succeeded and writes OUT_DIR/all/gradebook.csv
# and OUT_DIR/all/feedback/. A shard's student is chosen by a hash of the student id, so each
# student's notebooks are graded by one task. A task that is preempted or fails can simply run
# again: it resumes from the results it had stored (--requeue does that for you).
# Put the hidden checks somewhere students cannot read and pass them with HIDDEN=path/to/file.py.
# SANDBOX (default namespaces) is passed to --sandbox: the namespaces sandbox needs unprivileged user
# namespaces on the compute nodes (most distributions allow them); where a node refuses, the task fails
# with a message that says why, and SANDBOX=basic grades anyway with the weaker sandbox (see README).
#SBATCH --job-name=buflesson-grade
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --requeue
set -euo pipefail

SUBMISSIONS=${1:?usage: slurm-grade.sh SUBMISSIONS OUT_DIR [SHARDS]}
OUT=${2:?usage: slurm-grade.sh SUBMISSIONS OUT_DIR [SHARDS]}
SHARDS=${3:-4}
BUFLESSON=${BUFLESSON:-.venv/bin/buflesson}
SANDBOX=${SANDBOX:-namespaces}
HIDDEN_ARGS=()
if [ -n "${HIDDEN:-}" ]; then HIDDEN_ARGS=(--hidden "$HIDDEN"); fi

if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
    # On the login node: submit the array, then the merge that waits for all of it.
    mkdir -p "$OUT/logs"
    array=$(sbatch --parsable --array="0-$((SHARDS - 1))" --output="$OUT/logs/shard-%a.out" \
        "$0" "$SUBMISSIONS" "$OUT" "$SHARDS")
    sbatch --dependency="afterok:${array%%;*}" --job-name=buflesson-merge --output="$OUT/logs/merge.out" \
        --wrap="$BUFLESSON gradebook merge $OUT/shard-* --out $OUT/all"
    echo "submitted grading array $array and its merge; results in $OUT/all"
    exit 0
fi

# In array task I: grade part I of SHARDS, one notebook per core at a time. Every task runs from
# the submit directory, so the file names in the gradebooks match and the merge lines them up.
cd "${SLURM_SUBMIT_DIR:-.}"
I=$SLURM_ARRAY_TASK_ID
exec "$BUFLESSON" grade "$SUBMISSIONS" --out "$OUT/shard-$I" --shard "$I/$SHARDS" \
    --jobs "${SLURM_CPUS_PER_TASK:-2}" --sandbox "$SANDBOX" "${HIDDEN_ARGS[@]}"
