#!/bin/bash
# A phase diagram as a SLURM job array: 4 tasks each compute a quarter of the grid, then a dependent job merges.
#
#   bash examples/slurm_phase_diagram.sh      # on the login node, from the repository root: submits both jobs
#
# Run by hand, the script submits itself as the array (the #SBATCH lines below: --array=0-3) and then the merge,
# held until every task of the array has ended successfully (afterok on an array id waits for all its tasks).
# Each task runs `rfdiff phase-diagram ... --shard auto`: the shard index is SLURM_ARRAY_TASK_ID minus
# SLURM_ARRAY_TASK_MIN and the count SLURM_ARRAY_TASK_COUNT, so --num-shards is not needed; task I writes
# runs/phase/phase_diagram.shard-I-of-4.nc. Within a task the grid chunks are sharded over the GPUs that task
# can see (jax.local_devices()): one GPU per task or several, both work.
# `rfdiff merge runs/phase` writes runs/phase/phase_diagram.nc, bit-identical to an unsharded run; if a task
# failed it names the missing shard(s). Rerun one by hand with explicit numbers, not `sbatch --array=I` (a
# one-task array has count 1): rfdiff phase-diagram ... --shard I --num-shards 4 --resume, then merge again.
# Other schedulers: SGE `qsub -t 1-4`, LSF `bsub -J "pd[1-4]"`, PBS `qsub -J 0-3`; LSF and PBS do not export
# the array size, so add --num-shards 4 there. See `rfdiff merge --help`.
#
#SBATCH --job-name=rfdiff-pd
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
#SBATCH --output=runs/phase/slurm-%A_%a.out

set -euo pipefail
OUT=runs/phase
mkdir -p "$OUT"

if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then  # not inside the array: submit it, then the merge after it
    array=$(sbatch --parsable "$0")
    array=${array%%;*}  # --parsable prints "jobid" or "jobid;cluster"
    sbatch --dependency="afterok:${array}" --job-name=rfdiff-pd-merge --time=00:10:00 \
        --output="$OUT/slurm-merge-%j.out" --wrap="rfdiff merge $OUT"
    exit 0
fi

# --resume: a task requeued after preemption continues from its checkpoint (refused if the inputs changed)
rfdiff phase-diagram examples/dynamics_two_class.toml --axis sigma_ratio=0.6:2:64 --axis pi1=0.05:0.95:64 \
    --fix separation=16 --out "$OUT" --shard auto --resume -q
