import Distributed
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM, SIGINT or SIGUSR1 asks a training run to stop: it finishes the step it is in, saves
/// a checkpoint and exits with status 0, which is how a scheduler's pre-emption is survived.
/// (OpenMPI's `mpirun` kills its ranks a second after its own SIGTERM but forwards SIGUSR1 to
/// them; `scripts/mpirun.sh` turns a SIGTERM or Ctrl-C into that SIGUSR1.) A second signal
/// while the first is being served ends the process at once.
public enum StopRequest {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    nonisolated(unsafe) static var installed = false
    public static let signals: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Installs the handlers (once per process).
    public static func install() {
        guard !installed else { return }
        installed = true
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for s in signals {
            Glibc.signal(s) { number in
                if StopRequest.flag != 0 { _exit(128 + number) }
                StopRequest.flag = number
            }
            sigaddset(&unblock, s)
        }
        // A launcher may have started this process with them blocked (the mask is inherited).
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// The signal received on this rank since start, if any.
    public static var signal: Int32? { flag == 0 ? nil : flag }

    /// Whether any rank has been asked to stop: every rank calls this after the same step, so
    /// all of them stop after that step together.
    public static func agreed(over communicator: any Communicator) throws -> Bool {
        var votes = [Int64(flag == 0 ? 0 : 1)]
        if communicator.size > 1 { try communicator.allReduceSum(&votes) }
        return votes[0] > 0
    }

    /// For tests: forget a served request.
    public static func reset() { flag = 0 }
}
