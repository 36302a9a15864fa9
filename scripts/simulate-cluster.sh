#!/usr/bin/env bash
# Runs an MPI job on a simulated two-host cluster on this machine:
#
#   scripts/simulate-cluster.sh [-np N] [--bin PATH] -- <acq-dist arguments>
#
# Two network namespaces, each with its own hostname (UTS namespace; simnode0-<pid> and
# simnode1-<pid>) and address, joined by a veth pair, stand in for two hosts. mpirun runs on
# simnode0 and reaches simnode1 through a launch agent (plm_rsh_agent) that runs the command there with `ip netns
# exec` instead of ssh; ranks talk over OpenMPI's TCP transport on the veth (shared memory is
# switched off, so even ranks on the same simulated host use TCP). The generated hostfile names
# both hosts with N/2 slots each (default N = 4, 2 ranks per host). Everything made here is
# removed on exit, also after a failure or Ctrl-C. Needs root (namespaces, veth).
# Exit status: the job's; 3 when this machine cannot create the namespaces (reason on stderr).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() { echo "usage: scripts/simulate-cluster.sh [-np N] [--bin PATH] -- <acq-dist arguments>" >&2; exit 2; }
np=4
passthrough=()
while [ $# -gt 0 ]; do
    case "$1" in
        -np|-n) [ $# -ge 2 ] || usage; np="$2"; shift 2 ;;
        --bin) [ $# -ge 2 ] || usage; passthrough+=(--bin "$2"); shift 2 ;;
        --) shift; break ;;
        *) echo "simulate-cluster.sh: unknown option '$1'" >&2; usage ;;
    esac
done
[[ "$np" =~ ^[1-9][0-9]*$ ]] && [ $((np % 2)) -eq 0 ] || { echo "simulate-cluster.sh: -np must be a positive even number (ranks are split over 2 hosts), got '$np'" >&2; exit 2; }

cannot() { echo "simulate-cluster.sh: cannot simulate a cluster on this machine: $*" >&2; exit 3; }
[ "$(id -u)" -eq 0 ] || cannot "network namespaces need root (run as root)"
command -v ip >/dev/null || cannot "the 'ip' tool is missing (apt-get install iproute2)"
command -v unshare >/dev/null || cannot "'unshare' is missing (util-linux)"

# Short unique names: interface names have at most 15 characters.
id="$$"
ns=("acqsim0-$id" "acqsim1-$id")
hosts=("simnode0-$id" "simnode1-$id")
addr=("10.213.7.1" "10.213.7.2")
dev="acqsim"                     # the veth end is called this inside both namespaces
work="$(mktemp -d /tmp/acq-simcluster.XXXXXX)"

job=""
cleanup() {
    local n
    # Quiet from here: bash would announce the job killed below as "Killed".
    exec 2>/dev/null
    for n in "${ns[@]}"; do
        if ip netns list 2>/dev/null | grep -qw "$n"; then
            # Anything still running in a simulated host (a daemon of a failed job) goes too.
            ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
            ip netns delete "$n" 2>/dev/null || true
        fi
        rm -rf "/etc/netns/$n"
    done
    ip link delete "sim0-$id" 2>/dev/null || true
    # OpenMPI's session folders are named after the host; these hosts were this run's only.
    rm -rf "${TMPDIR:-/tmp}/ompi.${hosts[0]}".* "${TMPDIR:-/tmp}/ompi.${hosts[1]}".*
    rm -rf "$work"
    [ -z "$job" ] || wait "$job" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

err="$(ip netns add "${ns[0]}" 2>&1)" || cannot "'ip netns add' failed: $err"
ip netns add "${ns[1]}"
ip link add "sim0-$id" type veth peer name "sim1-$id"
for i in 0 1; do
    ip link set "sim$i-$id" netns "${ns[$i]}"
    ip -n "${ns[$i]}" link set "sim$i-$id" name "$dev"
    ip -n "${ns[$i]}" addr add "${addr[$i]}/24" dev "$dev"
    ip -n "${ns[$i]}" link set "$dev" up
    ip -n "${ns[$i]}" link set lo up
    # `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: both hosts resolve
    # both names, and nothing of the real machine's configuration changes.
    mkdir -p "/etc/netns/${ns[$i]}"
    printf '127.0.0.1 localhost\n%s %s\n%s %s\n' "${addr[0]}" "${hosts[0]}" "${addr[1]}" "${hosts[1]}" > "/etc/netns/${ns[$i]}/hosts"
done

# The launch agent: mpirun calls it as `agent <host> <command...>` (as it would call ssh) to
# start its daemon on the other host; run the command in that host's namespace, under its
# hostname, through a shell as ssh would.
cat > "$work/agent" <<AGENT
#!/usr/bin/env bash
host="\$1"; shift
case "\$host" in
    ${hosts[0]}) n="${ns[0]}" ;;
    ${hosts[1]}) n="${ns[1]}" ;;
    *) echo "simulate-cluster agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$n" unshare --uts sh -c "hostname \$host && \$*"
AGENT
chmod +x "$work/agent"

printf '%s slots=%d\n%s slots=%d\n' "${hosts[0]}" $((np / 2)) "${hosts[1]}" $((np / 2)) > "$work/hostfile"
echo "simulate-cluster: ${hosts[0]} (${addr[0]}) and ${hosts[1]} (${addr[1]}) joined by veth, $((np / 2)) ranks each; hostfile:" >&2
sed 's/^/  /' "$work/hostfile" >&2

# In the background, so that a signal to this script runs the cleanup at once (it kills every
# process in the namespaces, mpirun included) instead of after the job.
set +e
ip netns exec "${ns[0]}" unshare --uts sh -c 'hostname "$0" && exec "$@"' "${hosts[0]}" \
    "$root/scripts/mpirun.sh" -np "$np" --hostfile "$work/hostfile" "${passthrough[@]}" \
    --mca plm_rsh_agent "$work/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca btl tcp,self --mca btl_tcp_if_include "$dev" --mca oob_tcp_if_include "$dev" \
    -- "$@" &
job=$!
wait "$job"
status=$?
job=""
exit "$status"
