import ArgumentParser
import Distributed

/// A collective the ranks disagree about: rank 0 broadcasts 8 values, the others expect 4.
/// MPI reports the truncated message as an error code on the receivers, which must come out
/// as one line naming the rank and the call, after which the job is aborted.
struct MPIErrorRanks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mpi-error")

    @OptionGroup var rank: RankOptions

    func run() throws {
        try runRank(rank) { comm in
            var values = [Float](repeating: 1, count: comm.rank == 0 ? 8 : 4)
            try comm.broadcast(&values, root: 0)
            // Rank 0's send can complete before the receivers notice; it waits here to be aborted.
            try comm.barrier()
        }
    }
}
