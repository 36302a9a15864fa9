#!/usr/bin/env bash
# Starts acq-dist on N MPI ranks with OpenMPI:
#
#   scripts/mpirun.sh -np N [--hostfile F] [--bin PATH] [--mca KEY VALUE]... -- <acq-dist arguments>
#
# - one kernel thread and one BLAS thread per rank (`--threads 1`, OPENBLAS_NUM_THREADS=1),
#   ranks bound to cores when they fit, not bound when there are more ranks than slots;
# - --allow-run-as-root when run as root, --oversubscribe (and yielding while idle) when N
#   exceeds the slots (the hostfile's, or this machine's cores without one);
# - mpirun's multi-line failure boxes become one line naming the rank (a rank that reported
#   its own error already printed that line, so its box is dropped).
# --bin runs another program built for it (default: $ACQ_DIST_BIN, else .build/release/acq-dist).
# Exit status: mpirun's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# A parent that starts this script with signals blocked (some test runners block SIGCHLD) would
# hold its TERM/INT trap until mpirun ends: start again once with every signal unblocked.
if [ -z "${MPIRUN_SH_UNBLOCKED:-}" ] && [ -r /proc/$$/status ] && ! grep -q '^SigBlk:[[:space:]]*0*$' /proc/$$/status; then
    MPIRUN_SH_UNBLOCKED=1 exec perl -MPOSIX -e 'sigprocmask(SIG_SETMASK, POSIX::SigSet->new()); exec @ARGV or die "mpirun.sh: cannot restart: $!\n"' -- "$0" "$@"
fi

usage() { echo "usage: scripts/mpirun.sh -np N [--hostfile FILE] [--bin PATH] [--mca KEY VALUE]... -- <acq-dist arguments>" >&2; exit 2; }
fail() { echo "mpirun.sh: $*" >&2; exit 2; }

np="" hostfile="" bin="${ACQ_DIST_BIN:-$root/.build/release/acq-dist}"
mca=()
while [ $# -gt 0 ]; do
    case "$1" in
        -np|-n) [ $# -ge 2 ] || usage; np="$2"; shift 2 ;;
        --hostfile) [ $# -ge 2 ] || usage; hostfile="$2"; shift 2 ;;
        --bin) [ $# -ge 2 ] || usage; bin="$2"; shift 2 ;;
        --mca) [ $# -ge 3 ] || usage; mca+=(--mca "$2" "$3"); shift 3 ;;
        --) shift; break ;;
        *) echo "mpirun.sh: unknown option '$1'" >&2; usage ;;
    esac
done
[[ "$np" =~ ^[1-9][0-9]*$ ]] || fail "-np needs a positive number of ranks, got '${np}'"
command -v mpirun >/dev/null || fail "mpirun is not on PATH (apt-get install openmpi-bin)"
[ -x "$bin" ] || fail "$bin is not an executable (build with 'swift build -c release', or pass --bin)"

cores=$(nproc)
args=(-np "$np")
if [ -n "$hostfile" ]; then
    [ -r "$hostfile" ] || fail "cannot read hostfile $hostfile"
    # Total slots, and the slots of lines naming this machine (a line without slots= gets the
    # node's cores from OpenMPI; count those as this machine's).
    read -r slots local_slots < <(awk -v cores="$cores" -v me="$(hostname)" -v short="$(hostname -s)" '
        { sub(/#.*/, "") } NF == 0 { next }
        { n = cores; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { n = substr($i, 7) + 0 }
          total += n
          if ($1 == "localhost" || $1 ~ /^127\./ || $1 == me || $1 == short) here += n }
        END { print total + 0, here + 0 }' "$hostfile")
    args+=(--hostfile "$hostfile")
else
    slots=$cores
    local_slots=$np
fi
[ "$(id -u)" -eq 0 ] && args+=(--allow-run-as-root)
[ "$np" -gt "$slots" ] && args+=(--oversubscribe)
if [ "$np" -gt "$slots" ] || [ "$local_slots" -gt "$cores" ]; then
    # More ranks than cores: no binding (ranks share cores anyway), and waiting ranks yield the
    # processor instead of spinning against the ranks that compute.
    args+=(--bind-to none --mca mpi_yield_when_idle 1)
else
    args+=(--map-by core --bind-to core)
fi
args+=(-x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

program=("$@")
has_threads=0
for a in "${program[@]}"; do [ "$a" = "--threads" ] && has_threads=1; done
[ $has_threads -eq 1 ] || program+=(--threads 1)

# mpirun prints failures as boxes between lines of dashes. Keep the one fact of each (which rank
# ended and how); pass every other line, and boxes we do not know, through unchanged.
condense='
function rank_of(text,   s) {
    if (match(text, /rank [0-9]+/)) { s = substr(text, RSTART + 5, RLENGTH - 5); return s }
    return "?"
}
function flush(   s, r, node, sig) {
    if (match(box, /process rank [0-9]+ with PID [0-9]+ on node [^ ]+ exited on signal [0-9]+ \([^)]*\)/)) {
        s = substr(box, RSTART, RLENGTH)
        r = rank_of(s)
        match(s, /on node [^ ]+/); node = substr(s, RSTART + 8, RLENGTH - 8)
        match(s, /signal [0-9]+ \([^)]*\)/); sig = substr(s, RSTART, RLENGTH)
        print "acq-dist: error: rank " r " (on " node ") was lost: it ended on " sig "; mpirun stopped the other ranks"
        lost = 1
    } else if (box ~ /MPI_ABORT was invoked on rank/) {
        # The aborting rank normally printed its own line, which may still be on its way:
        # this one is printed at the end only if that never came.
        pending = "acq-dist: error: rank " rank_of(box) " aborted the job"
    } else if (box ~ /terminated normally, but [0-9]+ process/) {
        # Always followed by the box that names the process.
    } else if (box ~ /exited with non-zero status/) {
        r = "?"
        if (match(box, /Process name: \[\[[0-9]+,[0-9]+\],[0-9]+\]/)) { s = substr(box, RSTART, RLENGTH); sub(/.*,/, "", s); sub(/\]/, "", s); r = s }
        s = "?"
        if (match(box, /Exit code: *[0-9]+/)) { s = substr(box, RSTART, RLENGTH); sub(/Exit code: */, "", s) }
        pending = "acq-dist: error: rank " r " exited with status " s "; mpirun stopped the other ranks"
    } else {
        printf "%s%s\n%s\n", rule, box, rule
    }
    fflush()
}
# mpirun sometimes fails to print the abort box itself while the job is torn down and says so
# instead: nothing to keep, as the box would have been condensed anyway.
/ORTE_ERROR_LOG: .*show_help\.c/ { next }
# The shared-memory transport of a surviving rank complains when it reads from a peer that was
# just killed ("[host:pid] Read -1, expected N, errno = 3", ESRCH). Held back: printed at the end
# only if no lost rank explains them.
/^\[[^]]*\] Read -?[0-9]+, expected [0-9]+, errno = [0-9]+$/ { held = held $0 "\n"; next }
# The note of mpirun that it passed SIGUSR1 on (this script already said why).
/^mpirun: Forwarding signal [0-9]+ to job$/ { next }
# Its count of further copies of a box it did not print in full, and how to see them.
/more process(es)? ha(s|ve) sent help message/ || /Set MCA parameter "orte_base_help_aggregate"/ { next }
/^---------------------+$/ {
    if (inbox) { flush(); inbox = 0 } else { inbox = 1; box = ""; rule = $0 }
    next
}
inbox { box = box "\n" $0; next }
{ print; fflush(); if ($0 ~ /[Ee]rror:/) reported = 1 }
END {
    if (held != "" && !lost) printf "%s", held
    if (inbox) printf "%s%s\n", rule, box
    if (pending != "" && !reported) print pending
}
'
# A pre-emption (SIGTERM) or Ctrl-C must reach the ranks as a request to save and stop: mpirun
# itself kills its ranks one second after its own SIGTERM or SIGINT, but forwards SIGUSR1 to
# them. So mpirun runs in a session of its own (outside the terminal's Ctrl-C) and this script
# turns TERM and INT into USR1 for it; a second one makes the ranks end at once.
fifo="$(mktemp -u "${TMPDIR:-/tmp}/mpirun-sh.XXXXXX")"
mkfifo "$fifo"
trap 'rm -f "$fifo"' EXIT
# Only stderr passes through the filter; stdout goes straight through.
# mawk (Debian's awk) reads its input in blocks unless interactive: lines would arrive late.
awk_flags=()
awk -W version 2>/dev/null | grep -q mawk && awk_flags=(-W interactive)
(trap '' INT TERM; exec awk "${awk_flags[@]}" "$condense" <"$fifo" 1>&2) &
filter=$!
setsid mpirun "${args[@]}" "${mca[@]}" "$bin" "${program[@]}" 2>"$fifo" &
job=$!
signalled=0
forward() {
    signalled=1
    echo "mpirun.sh: asking the ranks to finish their step, save a checkpoint and stop (signal again to end at once)" >&2
    kill -USR1 "$job" 2>/dev/null
}
trap forward TERM INT
set +e
while :; do
    wait "$job"
    status=$?
    # A trapped signal interrupts wait: keep waiting for mpirun itself.
    [ $signalled -eq 1 ] && [ $status -gt 128 ] && kill -0 "$job" 2>/dev/null && { signalled=0; continue; }
    break
done
wait "$filter"
exit "$status"
