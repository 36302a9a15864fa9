import Foundation

/// Pauses a save at a chosen point so that tests (and anyone checking a cluster's storage) can
/// kill a rank in the middle of it: `ACQ_DIST_CHECKPOINT_PAUSE=<point>:<seconds>[:<rank>]` with
/// point `after-shard` (every shard written, no manifest yet) or `before-commit` (manifest
/// written, folder not yet renamed). Unset, it costs one environment lookup per save.
enum FaultInjection {
    enum Point: String { case afterShardWritten = "after-shard", beforeCommit = "before-commit" }

    static func pauseIfRequested(_ point: Point, rank: Int) throws {
        guard let spec = ProcessInfo.processInfo.environment["ACQ_DIST_CHECKPOINT_PAUSE"] else { return }
        let parts = spec.split(separator: ":").map(String.init)
        guard parts.count >= 2, Point(rawValue: parts[0]) != nil, let seconds = Double(parts[1]),
              parts.count == 2 || Int(parts[2]) != nil else {
            throw CheckpointError.writeFailed("ACQ_DIST_CHECKPOINT_PAUSE='\(spec)': expected <after-shard|before-commit>:<seconds>[:<rank>]")
        }
        guard parts[0] == point.rawValue, parts.count == 2 || Int(parts[2]) == rank else { return }
        FileHandle.standardError.write(Data("acq-dist: rank \(rank) pausing \(seconds) s at checkpoint point \(point.rawValue) (ACQ_DIST_CHECKPOINT_PAUSE)\n".utf8))
        Thread.sleep(forTimeInterval: seconds)
    }
}
