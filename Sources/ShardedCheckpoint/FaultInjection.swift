import Foundation

/// Pauses a save at a chosen point so that tests (and anyone checking a cluster's storage) can
/// kill a rank in the middle of it: `ACQ_DIST_CHECKPOINT_PAUSE=<point>:<seconds>[:<rank>[:<step>]]`
/// with point `after-shard` (this rank's shard written, no manifest yet) or `before-commit`
/// (manifest written, folder not yet renamed; rank 0). Unset, it costs one lookup per save.
enum FaultInjection {
    enum Point: String { case afterShardWritten = "after-shard", beforeCommit = "before-commit" }

    static func pauseIfRequested(_ point: Point, rank: Int, step: Int) throws {
        guard let spec = ProcessInfo.processInfo.environment["ACQ_DIST_CHECKPOINT_PAUSE"] else { return }
        let parts = spec.split(separator: ":").map(String.init)
        guard (2...4).contains(parts.count), Point(rawValue: parts[0]) != nil, let seconds = Double(parts[1]),
              parts.dropFirst(2).allSatisfy({ Int($0) != nil }) else {
            throw CheckpointError.writeFailed("ACQ_DIST_CHECKPOINT_PAUSE='\(spec)': expected <after-shard|before-commit>:<seconds>[:<rank>[:<step>]]")
        }
        guard parts[0] == point.rawValue, parts.count < 3 || Int(parts[2]) == rank,
              parts.count < 4 || Int(parts[3]) == step else { return }
        FileHandle.standardError.write(Data("acq-dist: rank \(rank) (pid \(getpid())) pausing \(seconds) s at checkpoint point \(point.rawValue) of step \(step) (ACQ_DIST_CHECKPOINT_PAUSE)\n".utf8))
        Thread.sleep(forTimeInterval: seconds)
    }
}
