import Foundation
import Safetensors
import Testing

/// `acq-dist` with no subcommand is the main job (ACQ W4A4 on the shipped teacher); here with
/// the quick preset, a smaller batch and a slice of the test set, and the bad input it refuses.
@Suite struct DataFreeCLITests {
    static let teacher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/resnet20-fashion-mnist.safetensors")

    @Test func theMainJobWritesItsTableStudentMetricsAndPictures() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("run")
        let r = try runCLI(["--preset", "quick", "--batch-size", "16", "--warmup-steps", "10", "--steps", "20",
                            "--monitor-every", "10", "--test-limit", "200", "--monitor-images", "100",
                            "--model", Self.teacher.path, "--run-dir", run.path])
        try #require(r.status == 0, "status \(r.status)\n\(r.err)")
        #expect(r.out.contains("acq W4A4, preset quick: 10 warm-up + 20 steps"), "stdout: \(r.out)")
        for row in ["teacher", "student before fine-tuning", "student after fine-tuning"] {
            #expect(r.out.contains(row), "stdout: \(r.out)")
        }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        for name in ["plot.png", "samples.png"] + (0..<10).map({ "samples/class-\($0).png" }) {
            let data = try Data(contentsOf: run.appendingPathComponent(name))
            #expect(Array(data.prefix(8)) == png && data.count > 1000, "\(name) is not a PNG")
        }
        let student = try SafetensorsFile.read(contentsOf: run.appendingPathComponent("student.safetensors"))
        #expect(student.metadata["acq_dist"]?.contains("\"role\":\"student\"") == true)
        let records = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        // 10 warm-up steps, the calibration, 20 fine-tuning steps (one measured at 10), the end.
        #expect(records.count == 32)
        #expect(records.filter { $0["student_accuracy"] != nil }.count == 3)
        let last = try #require(records.last)
        #expect((last["student_after_accuracy"] as? Double).map { $0 > 0.5 } == true, "final record: \(last)")
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/step-00000050/manifest.json").path))
    }

    @Test(arguments: [
        (["--batch-size", "15"], "--batch-size must be even"),
        (["--position-range", "1.5"], "--position-range must be in (0, 1]"),
        (["--position-range", "0"], "--position-range must be in (0, 1]"),
        (["--method", "ddpm"], "'ddpm' is invalid for '--method"),
        (["--preset", "huge"], "'huge' is invalid for '--preset"),
        (["--pair-weights", "1"], "Unknown option '--pair-weights'"),
        (["--resume"], "--resume needs --run-dir"),
        (["--keep-checkpoints", "0"], "--keep-checkpoints must be at least 1"),
        (["--student-ce-weight=-1"], "--student-ce-weight must be 0 or more"),
        (["--weight-range", "kl"], "'kl' is invalid for '--weight-range"),
        (["--activation-range", "histogram"], "'histogram' is invalid for '--activation-range"),
        (["--condition", "coords"], "'coords' is invalid for '--condition"),
        (["--condition", "embedding", "--no-condition"], "--no-condition and --condition embedding contradict each other"),
    ])
    func badOptionsAreRefusedByName(_ arguments: [String], _ message: String) throws {
        let r = try runCLI(["datafree"] + arguments)
        #expect(r.status != 0)
        #expect(r.err.contains(message), "stderr: \(r.err)")
    }

    /// A teacher without batch-norm statistics (BN folded away) cannot drive the BNS loss.
    @Test func aTeacherWithoutBatchNormStatisticsIsRefused() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let full = try SafetensorsFile.read(contentsOf: Self.teacher)
        var folded = SafetensorsFile(metadata: full.metadata)
        for (name, tensor) in full.tensors where !name.contains("running_") && !name.contains("num_batches") {
            folded.set(name, tensor)
        }
        let url = folder.appendingPathComponent("folded.safetensors")
        try folded.write(to: url)
        let r = try runCLI(["--model", url.path, "--run-dir", folder.appendingPathComponent("run").path])
        #expect(r.status == 1)
        #expect(r.err.contains("the teacher has no batch-norm statistics") && r.err.contains(url.path), "stderr: \(r.err)")
    }
}
