/// Why a checkpoint could not be written or read; every message names the checkpoint folder and,
/// where one is at fault, the shard or the tensor.
public enum CheckpointError: Error, CustomStringConvertible {
    /// No checkpoint where one was asked for.
    case notFound(String)
    /// The manifest is missing, unreadable or inconsistent.
    case badManifest(checkpoint: String, detail: String)
    /// A shard named by the manifest is not there.
    case missingShard(checkpoint: String, shard: String)
    /// A shard's bytes do not match the manifest's size or checksum: damaged or truncated.
    case corruptShard(checkpoint: String, shard: String, detail: String)
    /// The checkpoint belongs to another run: other model, method or settings.
    case otherRun(checkpoint: String, differences: [String])
    /// The checkpoint's tensors are not the ones this run has.
    case stateMismatch(checkpoint: String, detail: String)
    /// Writing failed on some rank.
    case writeFailed(String)

    public var description: String {
        switch self {
        case let .notFound(detail): return detail
        case let .badManifest(checkpoint, detail): return "checkpoint \(checkpoint): damaged manifest: \(detail)"
        case let .missingShard(checkpoint, shard): return "checkpoint \(checkpoint): shard \(shard) is missing"
        case let .corruptShard(checkpoint, shard, detail): return "checkpoint \(checkpoint): shard \(shard) is damaged: \(detail)"
        case let .otherRun(checkpoint, differences):
            let head = differences.prefix(4).joined(separator: "; ")
            return "checkpoint \(checkpoint) belongs to another run: \(head)\(differences.count > 4 ? "; ..." : "")"
        case let .stateMismatch(checkpoint, detail): return "checkpoint \(checkpoint) does not fit this run: \(detail)"
        case let .writeFailed(detail): return "cannot save checkpoint: \(detail)"
        }
    }

    /// Damage that an older checkpoint does not share: resuming from `latest` falls back past it.
    var isDataDamage: Bool {
        if case .corruptShard = self { return true }
        return false
    }
}
