import ArgumentParser
import Distributed
import Foundation
import TensorCore

/// Rank programs for DistributedTests: each subcommand runs under `mpirun`, does one thing on
/// every rank and has rank 0 write what the test compares.
@main
struct MPITestProgram: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acq-dist-mpi-tests",
        abstract: "MPI rank programs started by DistributedTests (not a user tool).",
        subcommands: [TrainRanks.self, SyncBatchNormRanks.self, MPIErrorRanks.self])
}

/// Options every rank program takes (scripts/mpirun.sh passes --threads 1).
struct RankOptions: ParsableArguments {
    @Option(help: "Kernel threads per rank.") var threads = 1
}

/// Runs `body` on this rank of the MPI job; any failure aborts the whole job with one line.
func runRank(_ options: RankOptions, _ body: (MPICommunicator) throws -> Void) throws {
    Compute.setThreads(options.threads)
    let comm: MPICommunicator
    do { comm = try MPICommunicator() } catch {
        FileHandle.standardError.write(Data("acq-dist-mpi-tests: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
    do {
        try body(comm)
    } catch let error as MPIError {
        comm.abort("\(error)")
    } catch {
        comm.abort("rank \(comm.rank): \(error)")
    }
    try comm.finalize()
}

struct TestProgramError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
