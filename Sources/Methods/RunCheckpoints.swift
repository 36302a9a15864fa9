import Distributed
import Foundation
import Logging
import ShardedCheckpoint

/// When a training command saves and whether it resumes (`--checkpoint-every`, `--keep-checkpoints`,
/// `--resume`, `--resume-from`).
public struct CheckpointOptions: Sendable {
    public enum Resume: Sendable, Equatable {
        /// `latest` of the run folder's checkpoints (falling back past damaged ones).
        case latest
        /// A named checkpoint folder.
        case folder(String)
    }
    /// Save every this many steps (nil: only at the end and when asked to stop).
    public var every: Int?
    public var keep = 3
    public var resume: Resume?
    public init() {}
}

/// A training run stopped by SIGTERM, SIGINT or SIGUSR1 after saving: not a failure (exit 0).
public struct RunStopped: Error, CustomStringConvertible {
    public let step: Int
    public let checkpoint: URL
    public var description: String {
        "stopped by a signal after step \(step); checkpoint \(checkpoint.path) saved: continue with --resume"
    }
}

/// The checkpoints of one run, in `<run folder>/checkpoints`, as its step loop uses them.
public final class RunCheckpoints {
    public let store: ShardedCheckpoint
    let options: CheckpointOptions
    let run: [String: String]
    let logger: Logger
    public private(set) var lastSaved: (step: Int, folder: URL)?

    /// - directory: the checkpoints folder, the same path on every rank (a shared file system
    ///   on a cluster).
    /// - run: the run's identity and settings, compared when resuming.
    public init(directory: URL, options: CheckpointOptions, run: [String: String], communicator: any Communicator,
                logger: Logger) {
        store = ShardedCheckpoint(directory: directory, communicator: communicator, keep: options.keep)
        (self.options, self.run, self.logger) = (options, run, logger)
        StopRequest.install()
    }

    /// The state and step to continue from, or nil when the run starts afresh.
    /// - template: this run's state at the start (names and shapes).
    public func resume(template: TrainingState) throws -> (state: TrainingState, step: Int)? {
        guard let resume = options.resume else { return nil }
        let target: ShardedCheckpoint.Target
        switch resume {
        case .latest: target = .latest
        case let .folder(path): target = .folder(URL(fileURLWithPath: path))
        }
        let (state, step, folder) = try store.load(target, run: run, template: template) { logger.warning("\($0)") }
        logger.info("resuming at step \(step) from \(folder.path) on \(store.communicator.size) rank(s)")
        lastSaved = (step, folder)
        return (state, step)
    }

    /// Call after every step with the number of steps done: saves when `every` divides it, at
    /// `total`, and when a stop was asked for on any rank, in which case it throws `RunStopped`.
    public func afterStep(_ done: Int, total: Int, state: () -> TrainingState) throws {
        let stop = try StopRequest.agreed(over: store.communicator)
        let due = done == total || stop || options.every.map { done % $0 == 0 } ?? false
        guard due, lastSaved?.step != done else {
            if stop, let lastSaved { throw RunStopped(step: done, checkpoint: lastSaved.folder) }
            return
        }
        let started = Date()
        let folder = try store.save(state(), step: done, run: run)
        lastSaved = (done, folder)
        logger.info("checkpoint \(folder.lastPathComponent) saved in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        if stop { throw RunStopped(step: done, checkpoint: folder) }
    }
}
