import Distributed
import Foundation
import Safetensors
import TensorCore

/// Reading a checkpoint on one process, outside a run: `acq-dist checkpoint inspect / export`.
extension ShardedCheckpoint {
    /// A checkpoint's manifest with every shard's checksum verified (nil when intact).
    public struct Inspection {
        public let folder: URL
        public let manifest: CheckpointManifest
        /// For each shard, in order: nil when its size and CRC-32 match, else what is wrong.
        public let shardProblems: [String?]
        public var isIntact: Bool { shardProblems.allSatisfy { $0 == nil } }
    }

    /// `path` is a checkpoint folder, or a checkpoints folder (its `latest` is taken).
    public static func resolve(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path) { return url }
        let pointer = url.appendingPathComponent("latest")
        if let name = try? String(contentsOf: pointer, encoding: .utf8) {
            return url.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let nested = url.appendingPathComponent("checkpoints")
        if FileManager.default.fileExists(atPath: nested.appendingPathComponent("latest").path) { return try resolve(nested.path) }
        throw CheckpointError.notFound("\(path) is not a checkpoint (no manifest.json) nor a folder of checkpoints (no latest)")
    }

    public static func inspect(_ folder: URL) throws -> Inspection {
        let manifest = try CheckpointManifest.read(from: folder, checkpoint: folder.path)
        let store = ShardedCheckpoint(directory: folder.deletingLastPathComponent(), communicator: SingleProcessCommunicator())
        let problems = manifest.shards.map { shard -> String? in
            do { _ = try store.readShard(shard, in: folder, checkpoint: folder.path); return nil } catch { return "\(error)" }
        }
        return Inspection(folder: folder, manifest: manifest, shardProblems: problems)
    }

    /// Every tensor of a checkpoint, whole, after verifying every shard.
    public static func readAll(_ folder: URL) throws -> (manifest: CheckpointManifest, state: TrainingState) {
        let manifest = try CheckpointManifest.read(from: folder, checkpoint: folder.path)
        let store = ShardedCheckpoint(directory: folder.deletingLastPathComponent(), communicator: SingleProcessCommunicator())
        let template = TrainingState(manifest.tensors.map { ($0.name, Tensor(shape: $0.shape)) })
        let (state, _) = try store.loadOne(folder, run: manifest.run, template: template)
        return (manifest, state)
    }

    /// Writes one safetensors file of the checkpoint's tensors; with `component` (e.g. "student")
    /// only that component's tensors, named as in its PyTorch state dict (prefix removed).
    public static func export(_ folder: URL, component: String?, to url: URL) throws -> Int {
        let (manifest, state) = try readAll(folder)
        var file = SafetensorsFile(metadata: ["format": "pt", "step": "\(manifest.step)",
                                              "exported_from": folder.lastPathComponent], source: url.path)
        for (name, tensor) in state.entries {
            if let component {
                guard name.hasPrefix(component + ".") else { continue }
                file.set(String(name.dropFirst(component.count + 1)), tensor)
            } else {
                file.set(name, tensor)
            }
        }
        guard file.count > 0 else {
            let components = Set(state.names.compactMap { $0.split(separator: ".").first.map(String.init) }).sorted()
            throw CheckpointError.notFound("checkpoint \(folder.path) has no component '\(component ?? "")' (it has: \(components.joined(separator: ", ")))")
        }
        try file.write(to: url)
        return file.count
    }
}
