import Foundation
import Safetensors
import Testing

// `acq-dist finetune`: fine-tuning the shipped teacher with frozen BN statistics ends with the
// same weights whether its conv+BN blocks run in tune or in eval mode (as ConvBNTests shows for
// the bare training loop), and a bad --convbn-mode is one line naming the option.
@Suite struct FinetuneCLITests {
    static let teacher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/resnet20-fashion-mnist.safetensors")

    /// Every tensor of a model file by name.
    func tensors(_ url: URL) throws -> [String: [Float]] {
        let file = try SafetensorsFile.read(contentsOf: url)
        return Dictionary(uniqueKeysWithValues: try file.names.map { ($0, try file.tensor($0).scalars) })
    }

    func distance(_ a: [String: [Float]], _ b: [String: [Float]], names: [String]) -> (difference: Double, norm: Double) {
        var d = 0.0, n = 0.0
        for name in names {
            for (x, y) in zip(a[name]!, b[name]!) { d += Double(x - y) * Double(x - y); n += Double(y) * Double(y) }
        }
        return (d.squareRoot(), n.squareRoot())
    }

    @Test func tuneAndEvalFinetuningEndWithTheSameWeights() throws {
        let dir = try temporaryFolder()
        func run(_ mode: String) throws -> [String: [Float]] {
            let output = dir.appendingPathComponent("\(mode).safetensors")
            let r = try runCLI(["finetune", "--model", Self.teacher.path, "--convbn-mode", mode, "--epochs", "2",
                                "--batch-size", "32", "--train-limit", "160", "--lr", "0.005", "--test-limit", "100",
                                "--output", output.path, "--run-dir", dir.appendingPathComponent("run-\(mode)").path])
            #expect(r.status == 0, "stderr: \(r.err)")
            #expect(r.out.contains("(\(mode) mode): test accuracy"), "stdout: \(r.out)")
            let lines = try String(contentsOf: dir.appendingPathComponent("run-\(mode)/metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n")
            #expect(lines.count == 10 + 2, "10 steps and 2 epoch summaries, got \(lines.count) lines")
            return try tensors(output)
        }
        let tune = try run("tune"), eval = try run("eval"), start = try tensors(Self.teacher)
        #expect(Set(tune.keys) == Set(start.keys) && Set(eval.keys) == Set(start.keys))
        let statistics = start.keys.filter { $0.contains("running_") || $0.hasSuffix("num_batches_tracked") }
        for name in statistics { #expect(tune[name] == start[name] && eval[name] == start[name], "\(name) must stay frozen") }
        let trained = start.keys.filter { !statistics.contains($0) }.sorted()
        let (difference, norm) = distance(tune, eval, names: trained)
        #expect(difference / norm <= 1e-5, "relative difference |tune - eval| / |eval| = \(difference / norm)")
        let moved = distance(eval, start, names: trained)
        #expect(moved.difference / moved.norm > 1e-4, "weights moved by \(moved.difference / moved.norm)")
    }

    @Test(arguments: ["train", "deploy", "folded"])
    func badConvBNModeIsOneLineNamingTheOption(_ mode: String) throws {
        let r = try runCLI(["finetune", "--model", Self.teacher.path, "--convbn-mode", mode])
        #expect(r.status == 1)
        #expect(r.err == "acq-dist: error: --convbn-mode must be tune or eval, got '\(mode)'\n", "stderr: \(r.err)")
    }
}
