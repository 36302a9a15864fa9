import Distributed
import Foundation
import Safetensors
import TensorCore

/// Sharded checkpoints of a training run in `directory` (normally `<run folder>/checkpoints`):
///
///     checkpoints/
///       latest                      the name of the newest complete checkpoint
///       step-00000040/
///         manifest.json             run settings, tensors, shards with sizes and CRC-32s
///         shard-00000-of-00002.safetensors
///         shard-00001-of-00002.safetensors
///
/// The state is cut into one contiguous piece per rank (ZeRO-1 style), so each rank writes and
/// reads only its share. A save goes to a `.partial-*` folder; once every shard is flushed, rank 0
/// writes the manifest, renames the folder into place and then moves `latest` by rename: a crash
/// at any moment leaves either the new checkpoint complete or the previous one current. Every
/// method is collective: all ranks call it, and all ranks throw the same error.
public final class ShardedCheckpoint {
    public let directory: URL
    public let communicator: any Communicator
    /// Complete checkpoints kept; older ones are deleted after each save.
    public let keep: Int

    public init(directory: URL, communicator: any Communicator, keep: Int = 3) {
        precondition(keep >= 1, "a checkpoint store keeps at least one checkpoint")
        (self.directory, self.communicator, self.keep) = (directory, communicator, keep)
    }

    public static func folderName(step: Int) -> String { String(format: "step-%08d", step) }
    static func shardName(_ rank: Int, of size: Int) -> String { String(format: "shard-%05d-of-%05d.safetensors", rank, size) }

    // MARK: Save

    /// Saves `state` as the checkpoint of `step`; returns its folder.
    @discardableResult
    public func save(_ state: TrainingState, step: Int, run: [String: String]) throws -> URL {
        let (rank, size) = (communicator.rank, communicator.size)
        let final = directory.appendingPathComponent(Self.folderName(step: step))
        let partial = directory.appendingPathComponent(".partial-" + Self.folderName(step: step))
        try agree(attempt {
            guard rank == 0 else { return }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for leftover in try FileManager.default.contentsOfDirectory(atPath: directory.path) where leftover.hasPrefix(".partial-") {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(leftover))
            }
            try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: false)
        })

        let total = state.elementCount
        let mine = contiguousPiece(rank: rank, size: size, count: total)
        var shardInfo: [Int64] = [0, 0]
        try agree(attempt {
            var file = SafetensorsFile(metadata: ["step": "\(step)", "shard": "\(rank) of \(size)",
                                                  "range": "\(mine.lowerBound)..<\(mine.upperBound)"])
            for (name, tensor, offset) in layout(state) {
                let overlap = mine.clamped(to: offset..<(offset + tensor.count))
                guard !overlap.isEmpty else { continue }
                let slice = Array(tensor.scalars[(overlap.lowerBound - offset)..<(overlap.upperBound - offset)])
                file.set(name, Tensor(shape: [slice.count], scalars: slice))
            }
            let data = try file.serialized()
            try writeDurably(data, to: partial.appendingPathComponent(Self.shardName(rank, of: size)).path)
            shardInfo = [Int64(data.count), Int64(crc32(of: data))]
            try FaultInjection.pauseIfRequested(.afterShardWritten, rank: rank, step: step)
        })
        let shards = try communicator.allGather(shardInfo)

        try agree(attempt {
            guard rank == 0 else { return }
            let manifest = CheckpointManifest(
                format: CheckpointManifest.currentFormat, step: step, worldSize: size, run: run, elementCount: total,
                tensors: layout(state).map { name, tensor, offset in
                    let pieces = (0..<size).compactMap { r -> CheckpointManifest.Piece? in
                        let overlap = contiguousPiece(rank: r, size: size, count: total).clamped(to: offset..<(offset + tensor.count))
                        return overlap.isEmpty ? nil : .init(shard: r, start: overlap.lowerBound - offset, count: overlap.count)
                    }
                    return .init(name: name, shape: tensor.shape, offset: offset, pieces: pieces)
                },
                shards: (0..<size).map { r in
                    let piece = contiguousPiece(rank: r, size: size, count: total)
                    return .init(file: Self.shardName(r, of: size), start: piece.lowerBound, count: piece.count,
                                 bytes: Int(shards[r][0]), crc32: UInt32(shards[r][1]))
                },
                created: ISO8601DateFormatter().string(from: Date()))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeDurably(try encoder.encode(manifest), to: partial.appendingPathComponent("manifest.json").path)
            syncDirectory(partial.path)
            try FaultInjection.pauseIfRequested(.beforeCommit, rank: rank, step: step)
            // A checkpoint of the same step from an abandoned continuation is replaced.
            let replaced = directory.appendingPathComponent(".replaced-" + Self.folderName(step: step))
            let hadOld = FileManager.default.fileExists(atPath: final.path)
            if hadOld {
                try? FileManager.default.removeItem(at: replaced)
                try renameAtomically(final.path, replaced.path)
            }
            try renameAtomically(partial.path, final.path)
            syncDirectory(directory.path)
            let pointer = directory.appendingPathComponent(".latest.partial")
            try writeDurably(Data((Self.folderName(step: step) + "\n").utf8), to: pointer.path)
            try renameAtomically(pointer.path, directory.appendingPathComponent("latest").path)
            syncDirectory(directory.path)
            if hadOld { try? FileManager.default.removeItem(at: replaced) }
            prune(keeping: Self.folderName(step: step))
        })
        return final
    }

    /// Deletes all but the newest `keep` complete checkpoints (never `current`).
    func prune(keeping current: String) {
        let all = Self.checkpoints(in: directory)
        for (name, _) in all.dropFirst(keep) where name != current {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    /// The `step-*` folders of `directory`, newest first.
    static func checkpoints(in directory: URL) -> [(name: String, step: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            return (name, step)
        }.sorted { $0.step > $1.step }
    }

    // MARK: Load

    /// Which checkpoint to resume from.
    public enum Target {
        /// The one `latest` names; if its shards are damaged, the newest intact older one.
        case latest
        /// Exactly this checkpoint folder.
        case folder(URL)
    }

    /// Reads the checkpoint `target` into the shapes of `template` (this run's state: same names
    /// and shapes, values ignored) on any number of ranks: each rank reads and verifies the
    /// shards that overlap its own piece of the flat vector, and an all-gather assembles the
    /// whole state everywhere. `log` reports a fallback past a damaged checkpoint.
    public func load(_ target: Target, run: [String: String], template: TrainingState,
                     log: (String) -> Void) throws -> (state: TrainingState, step: Int, folder: URL) {
        var candidates: [URL]
        switch target {
        case let .folder(url):
            candidates = [url]
        case .latest:
            let all = Self.checkpoints(in: directory).map { directory.appendingPathComponent($0.name) }
            let pointer = directory.appendingPathComponent("latest")
            if let name = (try? String(contentsOf: pointer, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines),
               all.contains(where: { $0.lastPathComponent == name }) {
                let named = directory.appendingPathComponent(name)
                candidates = [named] + all.filter { $0.lastPathComponent != name }
            } else {
                candidates = all
            }
            guard !candidates.isEmpty else {
                throw CheckpointError.notFound("no checkpoint to resume from in \(directory.path) (no step-* folder)")
            }
        }
        for (i, folder) in candidates.enumerated() {
            do {
                let (state, step) = try loadOne(folder, run: run, template: template)
                return (state, step, folder)
            } catch let error as CollectiveError where error.isDataDamage && i + 1 < candidates.count {
                if communicator.rank == 0 {
                    log("\(error.message); resuming from the newest intact checkpoint instead, \(candidates[i + 1].path)")
                }
            }
        }
        fatalError("unreachable: the last candidate either loads or throws")
    }

    func loadOne(_ folder: URL, run: [String: String], template: TrainingState) throws -> (TrainingState, Int) {
        let name = folder.path
        var manifest: CheckpointManifest?
        try agree(attempt {
            let m = try CheckpointManifest.read(from: folder, checkpoint: name)
            let differences = m.differences(from: run)
            guard differences.isEmpty else { throw CheckpointError.otherRun(checkpoint: name, differences: differences) }
            let expected = layout(template).map { ($0.name, $0.tensor.shape) }
            for ((n, shape), record) in zip(expected, m.tensors) where n != record.name || shape != record.shape {
                throw CheckpointError.stateMismatch(checkpoint: name, detail: "it holds '\(record.name)' \(record.shape) where this run has '\(n)' \(shape)")
            }
            guard expected.count == m.tensors.count else {
                throw CheckpointError.stateMismatch(checkpoint: name, detail: "it holds \(m.tensors.count) tensors, this run has \(expected.count)")
            }
            manifest = m
        })
        let m = manifest!
        let mine = contiguousPiece(rank: communicator.rank, size: communicator.size, count: m.elementCount)
        var piece = [Float](repeating: 0, count: mine.count)
        try agree(attempt {
            for shard in m.shards where !mine.clamped(to: shard.start..<(shard.start + shard.count)).isEmpty {
                let file = try readShard(shard, in: folder, checkpoint: name)
                for record in m.tensors {
                    let overlap = mine.clamped(to: shard.start..<(shard.start + shard.count))
                        .clamped(to: record.offset..<(record.offset + record.count))
                    guard !overlap.isEmpty else { continue }
                    let pieceStart = max(record.offset, shard.start) - record.offset
                    guard let t = file[record.name] else {
                        throw CheckpointError.corruptShard(checkpoint: name, shard: shard.file, detail: "no tensor '\(record.name)'")
                    }
                    let values = t.scalars
                    for flat in overlap { piece[flat - mine.lowerBound] = values[flat - record.offset - pieceStart] }
                }
            }
        })
        let flat = try communicator.allGather(piece).flatMap { $0 }
        var state = TrainingState()
        for record in m.tensors {
            state.append(record.name, Tensor(shape: record.shape, scalars: Array(flat[record.offset..<(record.offset + record.count)])))
        }
        return (state, m.step)
    }

    /// A shard's bytes, checked against the manifest's size and CRC-32 before they are parsed.
    func readShard(_ shard: CheckpointManifest.ShardRecord, in folder: URL, checkpoint: String) throws -> SafetensorsFile {
        let url = folder.appendingPathComponent(shard.file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointError.missingShard(checkpoint: checkpoint, shard: shard.file)
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw CheckpointError.corruptShard(checkpoint: checkpoint, shard: shard.file, detail: "unreadable: \(error.localizedDescription)")
        }
        guard data.count == shard.bytes else {
            throw CheckpointError.corruptShard(checkpoint: checkpoint, shard: shard.file,
                                               detail: "\(data.count) bytes, the manifest says \(shard.bytes) (truncated?)")
        }
        let crc = crc32(of: data)
        guard crc == shard.crc32 else {
            throw CheckpointError.corruptShard(checkpoint: checkpoint, shard: shard.file,
                                               detail: String(format: "CRC-32 %08x, the manifest says %08x", crc, shard.crc32))
        }
        do { return try SafetensorsFile(data: data, source: url.path) } catch {
            throw CheckpointError.corruptShard(checkpoint: checkpoint, shard: shard.file, detail: "\(error)")
        }
    }

    // MARK: Agreement between ranks

    /// The same error on every rank, for collective calls: the first failing rank's.
    public struct CollectiveError: CollectiveFailure, CustomStringConvertible {
        public let message: String
        public let isDataDamage: Bool
        public var description: String { message }
    }

    func attempt(_ body: () throws -> Void) -> Error? {
        do { try body(); return nil } catch { return error }
    }

    /// Exchanges each rank's outcome; throws the lowest failing rank's error everywhere.
    func agree(_ error: Error?) throws {
        var mine: [UInt8] = []
        if let error {
            let damage = (error as? CheckpointError)?.isDataDamage ?? (error as? CollectiveError)?.isDataDamage ?? false
            mine = [damage ? 1 : 0] + Array("\(error)".utf8)
        }
        let all = communicator.size == 1 ? [mine] : try communicator.allGather(mine)
        guard let (rank, first) = all.enumerated().first(where: { !$0.element.isEmpty }) else { return }
        let text = String(decoding: first.dropFirst(), as: UTF8.self)
        throw CollectiveError(message: communicator.size > 1 && rank != communicator.rank ? "rank \(rank): \(text)" : text,
                              isDataDamage: first[0] == 1)
    }
}

/// Every tensor of `state` with its offset in the flat vector.
func layout(_ state: TrainingState) -> [(name: String, tensor: Tensor, offset: Int)] {
    var offset = 0
    return state.entries.map { entry in
        defer { offset += entry.tensor.count }
        return (entry.name, entry.tensor, offset)
    }
}
