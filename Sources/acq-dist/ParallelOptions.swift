import ArgumentParser
import Distributed
import Logging

/// Options of commands that train data-parallel under `mpirun`.
struct ParallelOptions: ParsableArguments {
    @Flag(name: .customLong("log-all-ranks"), help: "Under mpirun, let every rank log (default: rank 0 only).")
    var logAllRanks = false

    @Option(name: .customLong("bucket-mb"), help: "Gradient all-reduce bucket size in MiB.")
    var bucketMegabytes: Double = DataParallel.Options().bucketMegabytes

    func validate() throws {
        guard bucketMegabytes > 0 && bucketMegabytes.isFinite else {
            throw ValidationError("--bucket-mb must be a positive number of MiB, got \(bucketMegabytes)")
        }
    }

    var dataParallel: DataParallel.Options { DataParallel.Options(bucketMegabytes: bucketMegabytes) }

    /// The logger of this rank: rank 0 logs as `base`; the others are quiet (critical only)
    /// unless --log-all-ranks, and then name their rank.
    func logger(_ base: Logger, label: String, job: Job) -> Logger {
        guard job.size > 1 else { return base }
        var logger = Logger(label: "\(label)[rank \(job.rank)]")
        logger.logLevel = job.rank == 0 || logAllRanks ? base.logLevel : .critical
        return logger
    }
}
