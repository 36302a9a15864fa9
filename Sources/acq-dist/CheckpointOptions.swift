import ArgumentParser
import Distributed
import Foundation
import Logging
import Methods

/// Checkpoint options of the training commands.
struct CheckpointFlags: ParsableArguments {
    @Option(name: .customLong("checkpoint-every"), help: "Save a sharded checkpoint every N steps (also at the end and on SIGTERM/SIGINT/SIGUSR1).")
    var every: Int?
    @Option(name: .customLong("keep-checkpoints"), help: "Complete checkpoints kept in the run folder; older ones are deleted (default 3).")
    var keep: Int?
    @Flag(help: "Continue the run in --run-dir from its latest checkpoint (older intact ones if that one is damaged).")
    var resume = false
    @Option(name: .customLong("resume-from"), help: "Continue from this checkpoint folder (<run>/checkpoints/step-N); the run folder defaults to <run>.")
    var resumeFrom: String?

    func validate(runDirectory: String?) throws {
        if let every, every < 1 { throw ValidationError("--checkpoint-every must be at least 1, got \(every)") }
        if let keep, keep < 1 { throw ValidationError("--keep-checkpoints must be at least 1, got \(keep)") }
        guard !(resume && resumeFrom != nil) else { throw ValidationError("--resume and --resume-from exclude each other") }
        if resume && runDirectory == nil {
            throw ValidationError("--resume needs --run-dir, the folder of the run to continue (or use --resume-from <checkpoint folder>)")
        }
    }

    var options: CheckpointOptions {
        var o = CheckpointOptions()
        o.every = every
        o.keep = keep ?? o.keep
        o.resume = resume ? .latest : resumeFrom.map { .folder($0) }
        return o
    }

    /// The run folder to write: --run-dir, else the run a --resume-from checkpoint belongs to.
    /// Whether any checkpoint option was given (a command without steps refuses them).
    var isUsed: Bool { every != nil || keep != nil || resume || resumeFrom != nil }

    func runDirectory(explicit: String?) -> String? {
        explicit ?? resumeFrom.map { URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().path }
    }
}

extension Job {
    /// Rank 0 creates the run folder (`RunFolder` naming); every rank learns its path, which
    /// must be the same on every node (a shared file system) for checkpoints.
    func runFolder(name: String, explicit: String?) throws -> (folder: RunFolder?, path: URL) {
        let folder = rank == 0 ? try RunFolder(name: name, explicit: explicit) : nil
        let bytes = try communicator.broadcastBytes(Array((folder?.url.path ?? "").utf8), root: 0)
        return (folder, URL(fileURLWithPath: String(decoding: bytes, as: UTF8.self)))
    }
}

/// What a data-parallel training command writes: the run folder (rank 0), its checkpoints and
/// its metrics log, the last opened for resuming when the flags resume.
struct RunOutputs {
    let folder: RunFolder?
    let checkpoints: RunCheckpoints
    let metrics: MetricsLog

    init(job: Job, name: String, runDirectory: String?, flags: CheckpointFlags, identity: [String: String],
         logger: Logger) throws {
        let (folder, path) = try job.runFolder(name: name, explicit: flags.runDirectory(explicit: runDirectory))
        self.folder = folder
        checkpoints = RunCheckpoints(directory: path.appendingPathComponent("checkpoints"), options: flags.options,
                                     run: identity, communicator: job.communicator, logger: logger)
        metrics = try MetricsLog(url: folder?.file("metrics.jsonl"), resuming: flags.options.resume != nil)
    }
}

extension ACQDist {
    /// This invocation as a user would type it, for the provenance notes of the files it writes.
    static var commandLine: String { (["acq-dist"] + CommandLine.arguments.dropFirst()).joined(separator: " ") }
}
