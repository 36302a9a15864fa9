import ArgumentParser
import Foundation
import Methods
import ShardedCheckpoint

/// `acq-dist checkpoint inspect|export`: read a sharded checkpoint outside a run.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Inspect or export a sharded checkpoint.",
        subcommands: [Inspect.self, Export.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List what a checkpoint holds and verify every shard's checksum (exit status 1 if one is damaged).")
        @Argument(help: "A checkpoint folder (step-N), a checkpoints folder or a run folder (its latest checkpoint).")
        var path: String
        @Flag(help: "List every tensor, not only a summary per component.") var tensors = false

        func run() throws {
            try ACQDist.reportingErrors {
                let folder = try ShardedCheckpoint.resolve(path)
                let report = try ShardedCheckpoint.inspect(folder)
                let m = report.manifest
                print("checkpoint \(folder.path)")
                print("  step \(m.step), saved \(m.created) by \(m.worldSize) rank(s); \(m.tensors.count) tensors, \(m.elementCount) float32 values")
                for key in ["kind", "method", "quantization"] { if let v = m.run[key] { print("  \(key): \(v)") } }
                var components: [(String, Int, Int)] = []
                for t in m.tensors {
                    let c = t.name.components(separatedBy: ".").prefix(t.name.hasPrefix("optimizer.") ? 2 : 1).joined(separator: ".")
                    if components.last?.0 == c { components[components.count - 1].1 += 1; components[components.count - 1].2 += t.count }
                    else { components.append((c, 1, t.count)) }
                }
                for (c, n, values) in components { print("  \(c): \(n) tensors, \(values) values") }
                if tensors {
                    for t in m.tensors {
                        let shards = t.pieces.map { "\($0.shard)" }.joined(separator: ",")
                        print("    \(t.name) \(t.shape) in shard \(shards)")
                    }
                }
                for (shard, problem) in zip(m.shards, report.shardProblems) {
                    print("  \(shard.file): \(shard.bytes) bytes, values \(shard.start)..<\(shard.start + shard.count), CRC-32 \(String(format: "%08x", shard.crc32)) \(problem == nil ? "ok" : "DAMAGED")")
                }
                if let problem = report.shardProblems.compactMap({ $0 }).first { throw RunError(problem) }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a checkpoint's tensors as one safetensors file (PyTorch's safetensors.torch.load_file reads it).")
        @Argument(help: "A checkpoint folder, a checkpoints folder or a run folder.") var path: String
        @Option(help: "Output safetensors file.") var out: String
        @Option(help: "Only this component (student, generator, model, ...), named as in its PyTorch state dict.")
        var component: String?

        func run() throws {
            try ACQDist.reportingErrors {
                let folder = try ShardedCheckpoint.resolve(path)
                let n = try ShardedCheckpoint.export(folder, component: component, to: URL(fileURLWithPath: out))
                print("wrote \(n) tensors of \(folder.lastPathComponent) to \(out)")
            }
        }
    }
}
