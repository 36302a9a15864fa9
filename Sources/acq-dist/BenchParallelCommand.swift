import ArgumentParser
import Foundation
import Methods
import TensorCore

struct BenchParallel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-parallel",
        abstract: "Under mpirun: data-parallel ResNet-20 step throughput, communication share and gradient all-reduce bandwidth per bucket size.")

    @Option(name: .customLong("batch-per-rank"), help: "Images per rank per step (the global batch grows with the ranks).")
    var batchPerRank = 32
    @Option(help: "Timed steps per bucket size.") var steps = 8
    @Option(help: "Untimed steps before them.") var warmup = 2
    @Option(name: .customLong("bucket-mb"), help: "Bucket sizes to compare, MiB, comma-separated.")
    var bucketSizes = "0.0625,0.25,1,4"
    @Option(name: .customLong("allreduce-repeats"), help: "All-reduces timed per bandwidth figure.")
    var allReduceRepeats = 30
    @Flag(help: "Also print one 'result ...' line per figure (for scripts/bench-mpi.sh).") var results = false
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard batchPerRank >= 1, steps >= 1, warmup >= 0, allReduceRepeats >= 1 else {
            throw ValidationError("--batch-per-rank, --steps and --allreduce-repeats must be at least 1, --warmup at least 0")
        }
        _ = try sizes()
    }

    func sizes() throws -> [Double] {
        try bucketSizes.split(separator: ",").map { text in
            guard let mb = Double(text), mb > 0, mb.isFinite else {
                throw ValidationError("--bucket-mb takes positive MiB values separated by commas, got '\(text)'")
            }
            return mb
        }
    }

    func run() throws {
        let job = Job.start()
        _ = common.setUp(label: "bench-parallel")
        try job.run {
            var bench = ParallelBenchmark()
            bench.batchPerRank = batchPerRank
            bench.steps = steps
            bench.warmup = warmup
            bench.bucketMegabytes = try sizes()
            bench.allReduceRepeats = allReduceRepeats
            let report = job.rank == 0
            if report {
                print("bench-parallel: ResNet-20 on 1x28x28, \(job.size) rank(s) x \(Compute.threads) kernel thread(s), \(batchPerRank) images per rank, \(steps) timed steps per bucket size")
                print("bucket MiB   ms/step   images/s   communication share")
            }
            var machineLines: [String] = []
            for row in try bench.runSteps(communicator: job.communicator) where report {
                print(String(format: "%10.4g %9.1f %10.1f   %6.1f%%", row.bucketMegabytes, 1000 * row.secondsPerStep,
                             row.imagesPerSecond, 100 * row.communicationShare))
                machineLines.append(String(format: "result steps ranks=%d bucket_mb=%g images_per_s=%.2f ms_per_step=%.3f comm_share=%.4f ",
                                           job.size, row.bucketMegabytes, row.imagesPerSecond, 1000 * row.secondsPerStep, row.communicationShare))
            }
            defer { if results { machineLines.forEach { print($0) } } }
            guard job.size > 1 else {
                if report { print("one rank: no all-reduce to measure") }
                return
            }
            let (rows, gatherSeconds) = try bench.runBandwidth(communicator: job.communicator)
            guard report, let bare = rows.first else { return }
            let busFactor = 2 * Double(job.size - 1) / Double(job.size)
            print("gradient all-reduce of \(bare.bytes) bytes, median of \(allReduceRepeats); the runtime's time includes copying")
            print(String(format: "the gradients into the flat buffer, %.3f ms when timed alone (last column: without it)", 1000 * gatherSeconds))
            print("what                   ms     algbw GB/s   busbw GB/s   vs MPI_Allreduce   without copy")
            for row in rows {
                let what = row.bucketMegabytes.map { String(format: "runtime, %g MiB", $0) } ?? "bare MPI_Allreduce"
                let communication = row.bucketMegabytes == nil ? row.seconds : Swift.max(row.seconds - gatherSeconds, 1e-9)
                print(String(format: "%-20@ %7.3f   %10.3f   %10.3f   %14.2fx   %11.2fx", what, 1000 * row.seconds,
                             row.gigabytesPerSecond, row.gigabytesPerSecond * busFactor, bare.seconds / row.seconds,
                             bare.seconds / communication))
                machineLines.append(String(format: "result allreduce ranks=%d bucket_mb=%@ bytes=%d ms=%.4f ratio=%.4f ", job.size,
                                           row.bucketMegabytes.map { String($0) } ?? "bare", row.bytes, 1000 * row.seconds,
                                           bare.seconds / row.seconds))
            }
        }
    }
}
