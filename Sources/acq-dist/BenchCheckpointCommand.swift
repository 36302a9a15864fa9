import ArgumentParser
import Checkpoint
import Distributed
import Foundation
import Methods
import Quantization
import ShardedCheckpoint

/// `acq-dist bench-checkpoint`: how long a data-free run's sharded checkpoint takes to save and
/// to load on this many ranks, on the state `datafree` would save (generator, student, both
/// optimizers, progress) for the shipped teacher.
struct BenchCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-checkpoint",
        abstract: "Under mpirun: time saving and loading the sharded checkpoint of a data-free ACQ run (median, min, max).")

    @Option(help: "The teacher (a model file from `acq-dist pretrain`).") var model: String = Eval.shippedTeacher
    @OptionGroup var quantization: QuantizationOptions
    @Option(help: "Saves timed, then as many loads.") var repeats = 5
    @Option(name: .customLong("dir"),
            help: "Folder for the checkpoints, the same path on every rank (default: the system's temporary folder); a new subfolder is made and removed.")
    var directory: String?
    @Flag(help: "Also print one 'result ...' line (for scripts/bench-checkpoint.sh).") var results = false
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    }

    func run() throws {
        let job = Job.start()
        let logger = common.setUp(label: "bench-checkpoint")
        try job.run {
            let communicator = job.communicator
            let q = quantization.config
            try q.validate()
            let modelURL = URL(fileURLWithPath: model)
            guard FileManager.default.fileExists(atPath: modelURL.path) else { throw RunError("model file \(model) does not exist") }
            // The state as `datafree` builds it: its default configuration (ACQ), the student of
            // this quantization, a trainer over all ranks.
            let (teacher, metadata) = try ModelFile.load(modelURL, expectedRole: "teacher")
            let config = DataFreeConfig()
            let student = try quantize(teacher, config: q, inputRange: normalisedPixelRange(mean: metadata.mean, std: metadata.std))
            let trainer = try DataFreeTrainer(config: config, teacher: teacher, student: student, communicator: communicator)
            let state = trainer.trainingState(nextStep: 0, measured: [:])
            let run = try DataFreeTrainer.runIdentity(config: config, teacher: teacher, quantization: q.name)

            // Rank 0 makes the folder; every rank learns its path.
            var made = ""
            if job.rank == 0 {
                let parent = directory.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
                let url = parent.appendingPathComponent("acq-dist-bench-checkpoint-\(UUID().uuidString.prefix(8))")
                do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                    throw RunError("--dir: cannot create \(url.path): \(error.localizedDescription)")
                }
                made = url.path
            }
            let folder = URL(fileURLWithPath: String(decoding: try communicator.broadcastBytes(Array(made.utf8), root: 0), as: UTF8.self))
            defer { if job.rank == 0 { try? FileManager.default.removeItem(at: folder) } }
            // Every checkpoint is kept, so that no save pays for deleting an older one.
            let store = ShardedCheckpoint(directory: folder, communicator: communicator, keep: repeats)

            /// Wall time of one collective call from a common start (a barrier), as its slowest
            /// rank saw it: the call is done when every rank is.
            func timed(_ body: () throws -> Void) throws -> Double {
                try communicator.barrier()
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                let mine = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                return try communicator.allGather([mine]).map { $0[0] }.max()!
            }
            var saved: [URL] = [], saveTimes: [Double] = [], loadTimes: [Double] = []
            for i in 1...repeats {
                saveTimes.append(try timed { saved.append(try store.save(state, step: i, run: run)) })
            }
            var loaded: TrainingState?
            for url in saved {
                loadTimes.append(try timed {
                    loaded = try store.load(.folder(url), run: run, template: state) { logger.warning("\($0)") }.state
                })
            }
            // A benchmark of a load that returned something else would be worthless.
            guard let loaded, sameBits(loaded, state) else {
                throw RunError("bench-checkpoint: the loaded state differs from the saved one")
            }
            try communicator.barrier()
            guard job.rank == 0 else { return }

            let manifest = try CheckpointManifest.read(from: saved[0], checkpoint: saved[0].path)
            let shardBytes = manifest.shards.map(\.bytes)
            let stateBytes = 4 * state.elementCount
            let (save, load) = (Summary(saveTimes), Summary(loadTimes))
            print("bench-checkpoint: data-free ACQ \(q.name) state for \(model) on \(job.size) rank(s), \(repeats) saves then \(repeats) loads into \(folder.path)")
            print("state: \(state.elementCount) float32 values in \(state.entries.count) tensors, \(stateBytes) bytes")
            print("shard files: \(shardBytes.map(String.init).joined(separator: ", ")) bytes")
            print(String(format: "save (write, fsync, commit): median %.1f ms, min %.1f, max %.1f", 1000 * save.median, 1000 * save.min, 1000 * save.max))
            print(String(format: "load (read, verify, all-gather): median %.1f ms, min %.1f, max %.1f", 1000 * load.median, 1000 * load.min, 1000 * load.max))
            if results {
                print(String(format: "result ranks=%d state_bytes=%d shard_bytes_min=%d shard_bytes_max=%d save_ms=%.3f save_ms_min=%.3f save_ms_max=%.3f load_ms=%.3f load_ms_min=%.3f load_ms_max=%.3f ",
                             job.size, stateBytes, shardBytes.min()!, shardBytes.max()!, 1000 * save.median, 1000 * save.min,
                             1000 * save.max, 1000 * load.median, 1000 * load.min, 1000 * load.max))
            }
        }
    }

    /// Median, minimum and maximum of some timings.
    struct Summary {
        let median: Double, min: Double, max: Double
        init(_ values: [Double]) {
            let sorted = values.sorted()
            let n = sorted.count
            median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
            (min, max) = (sorted[0], sorted[n - 1])
        }
    }

    /// Equal names and shapes and bit-identical values (NaN entries included).
    func sameBits(_ a: TrainingState, _ b: TrainingState) -> Bool {
        guard a.names == b.names else { return false }
        return zip(a.entries, b.entries).allSatisfy { x, y in
            x.tensor.shape == y.tensor.shape && x.tensor.scalars.map(\.bitPattern) == y.tensor.scalars.map(\.bitPattern)
        }
    }
}
