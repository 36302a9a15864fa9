import ArgumentParser
import Distributed
import Foundation
import Methods

/// This process's part in a job: one rank of an MPI job when OpenMPI's `mpirun` started it, the
/// only process otherwise.
///
/// Failures end the whole job with one line, never a hang:
/// - a `CollectiveFailure` is thrown by every rank at the same point: rank 0 prints it and
///   aborts the job; the other ranks stay silent and wait for that abort to end them;
/// - any other error is this rank's own: it prints one line naming itself and aborts the job
///   (MPI_Abort), since its peers would otherwise wait for it in their next collective; ranks
///   other than 0 wait a second first, so a failure common to all ranks is reported once.
final class Job {
    let communicator: any Communicator
    private let mpi: MPICommunicator?

    private init(_ communicator: any Communicator, mpi: MPICommunicator?) {
        self.communicator = communicator
        self.mpi = mpi
    }

    var rank: Int { communicator.rank }
    var size: Int { communicator.size }

    /// This process's rank as `mpirun` announced it, before MPI is initialised; nil outside mpirun.
    static var launchedRank: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].flatMap { Int($0) }
    }

    /// Initialises MPI when started by `mpirun`; a failure there ends the process with one line.
    static func start() -> Job {
        guard MPICommunicator.isLaunchedByMPI else { return Job(SingleProcessCommunicator(), mpi: nil) }
        do {
            let mpi = try MPICommunicator()
            return Job(mpi, mpi: mpi)
        } catch {
            FileHandle.standardError.write(Data("acq-dist: error: cannot start MPI: \(error)\n".utf8))
            exit(1)
        }
    }

    /// Runs a command body as described above; MPI is finalised after a success.
    func run(_ body: () throws -> Void) throws {
        guard let mpi else { return try ACQDist.reportingErrors(body) }
        do {
            try body()
        } catch let error as ExitCode {
            throw error
        } catch let stop as RunStopped {
            // Every rank stopped after the same step and the checkpoint is complete: a clean end.
            if rank == 0 { FileHandle.standardError.write(Data("acq-dist: \(stop)\n".utf8)) }
        } catch let error as CollectiveFailure {
            if rank == 0 { mpi.abort("\(error)") }
            // Rank 0 is aborting the job; waiting here lets its line be the only one. Should
            // the barrier return (rank 0 did not fail the same way), this rank reports itself.
            try? mpi.barrier()
            mpi.abort("rank \(rank), which rank 0 did not join in failing: \(error)")
        } catch let error as MPIError {
            reportOwnFailure(mpi, "\(error)")
        } catch {
            reportOwnFailure(mpi, "rank \(rank): \(error)")
        }
        try mpi.finalize()
    }

    /// Prints `message` and aborts the job. A rank other than 0 first gives rank 0 a second:
    /// when every rank fails the same way (a file missing on every node), rank 0's abort then
    /// ends the job before the others print the same line again.
    private func reportOwnFailure(_ mpi: MPICommunicator, _ message: String) -> Never {
        if rank != 0 { sleep(1) }
        mpi.abort(message)
    }
}

extension ACQDist {
    /// ArgumentParser's `main`, except that under `mpirun` only rank 0 reports a usage error:
    /// every rank parses the same arguments, and one report is enough.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if let rank = Job.launchedRank, rank != 0 { Foundation.exit(exitCode(for: error).rawValue) }
            exit(withError: error)
        }
    }
}
