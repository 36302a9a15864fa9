#!/usr/bin/env bash
# Data-parallel benchmarks, printed (not asserted):
# - scaling: 2 ranks x 1 thread against 1 rank x 1 thread with the same images per rank:
#   throughput ratio (goal at least 1.85) and the share of the step spent in communication;
# - gradient all-reduce (2 ranks): the runtime's bucketed all-reduce against one bare
#   MPI_Allreduce of the same bytes in the same run (goal at least 0.9x), per bucket size.
#
#   scripts/bench-mpi.sh [--bin PATH] [-- <bench-parallel options>]
#
# Other work on the machine skews both; run it on an idle machine for figures to quote.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=(--bin "$2"); shift 2 ;;
        --) shift; break ;;
        *) echo "usage: scripts/bench-mpi.sh [--bin PATH] [-- <bench-parallel options>]" >&2; exit 2 ;;
    esac
done

run() { "$root/scripts/mpirun.sh" -np "$1" "${bin[@]}" -- bench-parallel --results "${@:2}"; }

echo "== 1 rank x 1 thread"
one="$(run 1 "$@")"
echo "$one" | grep -v '^result '
echo
echo "== 2 ranks x 1 thread"
two="$(run 2 "$@")"
echo "$two" | grep -v '^result '
echo
echo "== scaling, 2 ranks against 1 (same images per rank)"
echo "bucket MiB   1 rank img/s   2 ranks img/s   ratio   communication share (2 ranks)"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
echo "$one" | grep '^result steps' | while read -r line; do
    mb="$(echo "$line" | field bucket_mb)"
    a="$(echo "$line" | field images_per_s)"
    other="$(echo "$two" | grep "^result steps .* bucket_mb=$mb " || true)"
    [ -n "$other" ] || continue
    b="$(echo "$other" | field images_per_s)"
    share="$(echo "$other" | field comm_share)"
    awk -v mb="$mb" -v a="$a" -v b="$b" -v s="$share" 'BEGIN { printf "%10s %14.1f %15.1f %7.2f   %5.1f%%\n", mb, a, b, b / a, 100 * s }'
done
