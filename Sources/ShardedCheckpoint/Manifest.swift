import Foundation

/// `manifest.json` of a checkpoint: what the run was, where every tensor lives, and the size and
/// checksum of every shard. Written last, by rank 0, once every shard is on disk.
public struct CheckpointManifest: Codable, Sendable {
    public static let currentFormat = "acq-dist sharded checkpoint, version 1"

    public struct TensorRecord: Codable, Sendable {
        public var name: String
        public var shape: [Int]
        /// Where the tensor starts in the flat vector of the whole state.
        public var offset: Int
        /// The shards holding it: shard index, first element within the tensor, element count.
        public var pieces: [Piece]
        public var count: Int { shape.reduce(1, *) }
    }

    public struct Piece: Codable, Sendable {
        public var shard: Int
        public var start: Int
        public var count: Int
    }

    public struct ShardRecord: Codable, Sendable {
        public var file: String
        /// The shard's contiguous range [start, start + count) of the flat vector.
        public var start: Int
        public var count: Int
        public var bytes: Int
        /// zlib CRC-32 of the whole file.
        public var crc32: UInt32
    }

    public var format: String
    public var step: Int
    public var worldSize: Int
    /// The run's identity and settings (model, method, quantization, batch, seed, ...): a resume
    /// with different values is refused, naming them.
    public var run: [String: String]
    public var elementCount: Int
    public var tensors: [TensorRecord]
    public var shards: [ShardRecord]
    /// UTC time of the save (information only).
    public var created: String

    public static func read(from url: URL, checkpoint: String) throws -> CheckpointManifest {
        let file = url.appendingPathComponent("manifest.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw CheckpointError.badManifest(checkpoint: checkpoint, detail: "manifest.json is missing (an unfinished save?)")
        }
        let manifest: CheckpointManifest
        do {
            manifest = try JSONDecoder().decode(CheckpointManifest.self, from: Data(contentsOf: file))
        } catch let error as DecodingError {
            throw CheckpointError.badManifest(checkpoint: checkpoint, detail: "manifest.json is not a valid manifest (\(describe(error)))")
        } catch {
            throw CheckpointError.badManifest(checkpoint: checkpoint, detail: "cannot read manifest.json: \(error.localizedDescription)")
        }
        try manifest.validate(checkpoint: checkpoint)
        return manifest
    }

    /// The manifest's own consistency: shards tile the flat vector, tensors fit in it.
    func validate(checkpoint: String) throws {
        func bad(_ detail: String) -> CheckpointError { .badManifest(checkpoint: checkpoint, detail: detail) }
        guard format == Self.currentFormat else { throw bad("format '\(format)', expected '\(Self.currentFormat)'") }
        guard worldSize >= 1, shards.count == worldSize else { throw bad("\(shards.count) shards for world size \(worldSize)") }
        var end = 0
        for (i, s) in shards.enumerated() {
            guard s.start == end, s.count >= 0, !s.file.contains("/") else { throw bad("shard \(i) (\(s.file)) does not continue the flat vector at \(end)") }
            end += s.count
        }
        guard end == elementCount else { throw bad("shards cover \(end) elements, the state has \(elementCount)") }
        var offset = 0
        for t in tensors {
            guard t.offset == offset, t.shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(t.name)' is not at offset \(offset)") }
            offset += t.count
        }
        guard offset == elementCount else { throw bad("tensors hold \(offset) elements, the state has \(elementCount)") }
    }

    /// Names of the run settings that differ from `run`, with both values.
    func differences(from run: [String: String]) -> [String] {
        Set(self.run.keys).union(run.keys).sorted().compactMap { key in
            let saved = self.run[key], current = run[key]
            guard saved != current else { return nil }
            return "\(key) is \(saved.map { "'\($0)'" } ?? "absent") in the checkpoint, \(current.map { "'\($0)'" } ?? "absent") in this run"
        }
    }
}

/// Piece `rank` of `count` elements cut into `size` contiguous pieces as even as integers allow.
public func contiguousPiece(rank: Int, size: Int, count: Int) -> Range<Int> {
    (count * rank / size)..<(count * (rank + 1) / size)
}

private func describe(_ error: DecodingError) -> String {
    switch error {
    case let .keyNotFound(key, _): return "no '\(key.stringValue)'"
    case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}
