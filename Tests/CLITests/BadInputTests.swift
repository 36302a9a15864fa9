import Checkpoint
import Foundation
import NN
import Safetensors
import Testing
import TensorCore

/// Runs the `acq-dist` binary that sits beside the test bundle; returns (status, stdout, stderr).
func runCLI(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let binary = products.appendingPathComponent("acq-dist")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw CLITestError("acq-dist is not built at \(binary.path): run `swift build -c release` first")
    }
    let p = Process()
    p.executableURL = binary
    p.arguments = arguments + (arguments.contains("--threads") ? [] : ["--threads", "1"])
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("acq-dist-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A small valid teacher file to damage.
func writeTeacher(to url: URL) throws {
    let model = ResNet(ResNetConfig())
    let meta = ModelMetadata(role: "teacher", architecture: ResNetConfig(), imageShape: [1, 28, 28],
                             mean: [0.2860], std: [0.3530])
    try ModelFile.save(model, metadata: meta, to: url)
}

@Suite struct BadInputTests {
    @Test func missingDatasetNamesTheDebianPackageAndWritesNothing() throws {
        let dir = try temporaryFolder()
        let output = dir.appendingPathComponent("teacher.safetensors")
        let r = try runCLI(["pretrain", "--data-dir", dir.appendingPathComponent("nowhere").path,
                            "--output", output.path, "--run-dir", dir.appendingPathComponent("run").path])
        #expect(r.status == 1)
        #expect(r.err.contains("dataset-fashion-mnist"), "stderr: \(r.err)")
        #expect(r.err.contains("nowhere"), "stderr: \(r.err)")
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }

    @Test func truncatedModelFileIsNamed() throws {
        let dir = try temporaryFolder()
        let file = dir.appendingPathComponent("cut.safetensors")
        try writeTeacher(to: file)
        let data = try Data(contentsOf: file)
        try data.prefix(data.count / 2).write(to: file)
        let r = try runCLI(["eval", "--model", file.path])
        #expect(r.status == 1)
        #expect(r.err.contains("cut.safetensors") && r.err.contains("truncated"), "stderr: \(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "one line, got: \(r.err)")
    }

    @Test func missingTensorAndShapeMismatchNameFileAndTensor() throws {
        let dir = try temporaryFolder()
        let good = dir.appendingPathComponent("good.safetensors")
        try writeTeacher(to: good)
        let file = try SafetensorsFile.read(contentsOf: good)
        var missing = SafetensorsFile(metadata: file.metadata)
        for (name, t) in file.tensors where name != "layers.2.b1.running_var" {
            missing.set(name, t, dtype: file.dtypes[name] ?? .f32)
        }
        let missingURL = dir.appendingPathComponent("missing.safetensors")
        try missing.write(to: missingURL)
        let r1 = try runCLI(["eval", "--model", missingURL.path])
        #expect(r1.status == 1)
        #expect(r1.err.contains("missing.safetensors") && r1.err.contains("layers.2.b1.running_var"), "stderr: \(r1.err)")

        var wrong = file
        wrong.set("fc.bias", Tensor.zeros([7]))
        let wrongURL = dir.appendingPathComponent("wrong.safetensors")
        try wrong.write(to: wrongURL)
        let r2 = try runCLI(["eval", "--model", wrongURL.path])
        #expect(r2.status == 1)
        #expect(r2.err.contains("wrong.safetensors") && r2.err.contains("fc.bias") && r2.err.contains("[7]"), "stderr: \(r2.err)")
    }

    @Test func missingModelFileIsNamed() throws {
        let r = try runCLI(["eval", "--model", "/nonexistent/teacher.safetensors"])
        #expect(r.status == 1)
        #expect(r.err.contains("/nonexistent/teacher.safetensors"), "stderr: \(r.err)")
    }

    @Test(arguments: [
        (["pretrain", "--depth", "19"], "--depth"),
        (["pretrain", "--batch-size", "many"], "--batch-size"),
        (["pretrain", "--epochs", "0"], "--epochs"),
        (["bench", "--inputs", "1x28"], "--inputs"),
        (["eval", "--threads", "0"], "--threads"),
    ])
    func badOptionsNameTheOption(_ args: [String], _ option: String) throws {
        let r = try runCLI(args)
        #expect(r.status != 0)
        #expect(r.err.contains(option), "stderr for \(args): \(r.err)")
    }
}
