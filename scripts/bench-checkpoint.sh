#!/usr/bin/env bash
# Sharded-checkpoint benchmark, printed (not asserted): `acq-dist bench-checkpoint` on 1, 2 and
# 4 ranks through scripts/mpirun.sh, one table. Each run saves the state of a data-free ACQ run
# on the shipped teacher R times (default 5) and loads it R times; the table has the median
# (and min-max) of each, timed from a barrier until the slowest rank returns.
#
#   scripts/bench-checkpoint.sh [--bin PATH] [--ranks "1 2 4"] [-- <bench-checkpoint options>]
#
# More ranks than cores oversubscribe the machine (scripts/mpirun.sh says so to mpirun); other
# work on the machine and on its disk skews the figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=()
ranks="1 2 4"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) [ $# -ge 2 ] || { echo "bench-checkpoint.sh: --bin needs a path" >&2; exit 2; }; bin=(--bin "$2"); shift 2 ;;
        --ranks) [ $# -ge 2 ] || { echo "bench-checkpoint.sh: --ranks needs a list" >&2; exit 2; }; ranks="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: scripts/bench-checkpoint.sh [--bin PATH] [--ranks \"1 2 4\"] [-- <bench-checkpoint options>]" >&2; exit 2 ;;
    esac
done

lines=()
for n in $ranks; do
    echo "== $n rank(s)"
    out="$("$root/scripts/mpirun.sh" -np "$n" "${bin[@]}" -- bench-checkpoint --results "$@")"
    echo "$out" | grep -v '^result '
    lines+=("$(echo "$out" | grep '^result ')")
    echo
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
echo "ranks   state MB   shard MB per rank   save ms median (min-max)   load ms median (min-max)"
for line in "${lines[@]}"; do
    awk -v n="$(echo "$line" | field ranks)" -v state="$(echo "$line" | field state_bytes)" \
        -v smin="$(echo "$line" | field shard_bytes_min)" -v smax="$(echo "$line" | field shard_bytes_max)" \
        -v save="$(echo "$line" | field save_ms)" -v save_min="$(echo "$line" | field save_ms_min)" -v save_max="$(echo "$line" | field save_ms_max)" \
        -v load="$(echo "$line" | field load_ms)" -v load_min="$(echo "$line" | field load_ms_min)" -v load_max="$(echo "$line" | field load_ms_max)" \
        'BEGIN {
            shard = (smin == smax) ? sprintf("%.3f", smax / 1e6) : sprintf("%.3f-%.3f", smin / 1e6, smax / 1e6)
            printf "%5d %10.3f %19s %12.1f (%.1f-%.1f) %14.1f (%.1f-%.1f)\n", n, state / 1e6, shard, save, save_min, save_max, load, load_min, load_max
        }'
done
