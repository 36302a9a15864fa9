import Foundation
import Testing

/// Sharded checkpoints of `pretrain` (under mpirun), `quantize --method qat` (one process) and
/// the refusal of a checkpoint another kind of run saved. In the serialised MPI suite: the jobs
/// share the two cores.
extension MPITests {
    static let shippedTeacher = Launch.packageRoot.appendingPathComponent("models/resnet20-fashion-mnist.safetensors")

    /// Pretraining on 2 ranks: 960 images, global batch 48, 2 epochs of 20 steps, each
    /// measured on 500 test images.
    func pretrainArguments(_ run: URL, _ extra: [String]) throws -> [String] {
        ["-np", "2", "--bin", try cli().path, "--", "pretrain", "--train-limit", "960", "--batch-size", "48",
         "--epochs", "2", "--lr", "0.05", "--test-limit", "500", "--output", run.appendingPathComponent("teacher.safetensors").path,
         "--run-dir", run.path] + extra
    }

    /// A metrics log as lines, each with its wall-clock field ("seconds" of the epoch records)
    /// removed: the only thing two runs of the same steps may differ in.
    func metricsWithoutTimes(_ run: URL) throws -> [String] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
            var record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            record["seconds"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    /// 40 steps on 2 ranks, against a run stopped by SIGTERM part-way (which writes no model,
    /// only its checkpoint) and resumed: the same model, bit for bit, and the same metrics log
    /// (epoch records included: the stopped epoch's running loss and accuracy are carried).
    @Test func aStoppedAndResumedPretrainRunIsTheUninterruptedOne() throws {
        let folder = try Launch.folder("pretrain-resume")
        defer { try? FileManager.default.removeItem(at: folder) }
        let whole = folder.appendingPathComponent("whole"), parts = folder.appendingPathComponent("parts")
        let r = try Launch.run(Launch.script("mpirun.sh"), try pretrainArguments(whole, []), in: folder)
        try #require(r.status == 0, "status \(r.status)\n\(r.err)")

        let job = try Launch.start(Launch.script("mpirun.sh"), try pretrainArguments(parts, []), in: folder)
        let step = try stopBySIGTERM(job, run: parts) { ((try? stepRecords(parts))?.count ?? 0) >= 4 }
        #expect(step >= 4 && step < 40, "stopped at step \(step)")
        #expect(!FileManager.default.fileExists(atPath: parts.appendingPathComponent("teacher.safetensors").path),
                "a stopped run must not write its half-trained model as --output")

        let resumed = try Launch.run(Launch.script("mpirun.sh"), try pretrainArguments(parts, ["--resume"]), in: folder)
        try #require(resumed.status == 0, "status \(resumed.status)\n\(resumed.err)")
        #expect(resumed.err.contains("resuming at step \(step) from"), "stderr: \(resumed.err)")
        let (a, b) = (try tensors(parts.appendingPathComponent("teacher.safetensors")),
                      try tensors(whole.appendingPathComponent("teacher.safetensors")))
        #expect(a.count == b.count && !a.isEmpty)
        for (key, values) in b { #expect(a[key] == values, "\(key) differs after the resume") }
        let (logA, logB) = (try metricsWithoutTimes(parts), try metricsWithoutTimes(whole))
        #expect(logB.count == 40 + 2, "40 steps and 2 epoch records, got \(logB.count) lines")
        #expect(logA == logB, "the resumed run's metrics.jsonl differs from the uninterrupted run's")
    }

    /// QAT (one process, 2 epochs of 6 steps) resumed from its step-4 checkpoint: the resumed run
    /// skips the calibration (the ranges are in the checkpoint) and ends with the uninterrupted
    /// run's student, metrics log and accuracy.
    @Test func aQATRunResumedFromAMidRunCheckpointIsTheUninterruptedOne() throws {
        let folder = try Launch.folder("qat-resume")
        defer { try? FileManager.default.removeItem(at: folder) }
        func qat(_ run: URL, _ extra: [String]) throws -> Launch.Result {
            try Launch.run(try cli(), ["quantize", "--method", "qat", "--teacher", Self.shippedTeacher.path, "--train-limit", "96",
                                       "--batch-size", "16", "--epochs", "2", "--calibration-batches", "2", "--lr", "0.01",
                                       "--test-limit", "200", "--run-dir", run.path] + extra, in: folder)
        }
        func accuracyLine(_ r: Launch.Result) -> String? { r.out.split(separator: "\n").first { $0.hasPrefix("qat ") }.map(String.init) }
        let whole = folder.appendingPathComponent("whole"), parts = folder.appendingPathComponent("parts")
        let r = try qat(whole, ["--checkpoint-every", "4"])
        try #require(r.status == 0, "status \(r.status)\n\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: whole.appendingPathComponent("checkpoints").path).sorted()
                == ["latest", "step-00000004", "step-00000008", "step-00000012"])

        // A copy of the finished run, continued from step 4: its log is cut back to steps 0-3
        // and written on, and the student is written anew.
        try FileManager.default.copyItem(at: whole, to: parts)
        try FileManager.default.removeItem(at: parts.appendingPathComponent("student.safetensors"))
        let resumed = try qat(parts, ["--checkpoint-every", "4", "--resume-from", parts.appendingPathComponent("checkpoints/step-00000004").path])
        try #require(resumed.status == 0, "status \(resumed.status)\n\(resumed.err)")
        #expect(resumed.err.contains("resuming at step 4 from"), "stderr: \(resumed.err)")
        #expect(r.err.contains("calibrating activation ranges") && !resumed.err.contains("calibrating activation ranges"),
                "only the fresh run calibrates; resumed stderr: \(resumed.err)")
        let (a, b) = (try tensors(parts.appendingPathComponent("student.safetensors")),
                      try tensors(whole.appendingPathComponent("student.safetensors")))
        #expect(a.count == b.count && !a.isEmpty)
        for (key, values) in b { #expect(a[key] == values, "student \(key) differs after the resume") }
        let (logA, logB) = (try String(contentsOf: parts.appendingPathComponent("metrics.jsonl"), encoding: .utf8),
                            try String(contentsOf: whole.appendingPathComponent("metrics.jsonl"), encoding: .utf8))
        #expect(logB.split(separator: "\n").count == 12)
        #expect(logA == logB, "the resumed run's metrics.jsonl differs from the uninterrupted run's")
        #expect(accuracyLine(resumed) != nil && accuracyLine(resumed) == accuracyLine(r), "stdout: \(resumed.out)\nuninterrupted: \(r.out)")
    }

    /// `finetune --resume` of a pretraining run's checkpoint, by run folder or by checkpoint
    /// folder: one line saying whose checkpoint it is, and the pretraining run's log untouched.
    @Test func finetuneRefusesToResumeAPretrainCheckpoint() throws {
        let folder = try Launch.folder("kind")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("pretrain")
        let p = try Launch.run(try cli(), ["pretrain", "--train-limit", "96", "--batch-size", "48", "--epochs", "1", "--test-limit", "100",
                                           "--output", folder.appendingPathComponent("teacher.safetensors").path,
                                           "--run-dir", run.path], in: folder)
        try #require(p.status == 0, "status \(p.status)\n\(p.err)")
        let log = try Data(contentsOf: run.appendingPathComponent("metrics.jsonl"))
        let checkpoint = run.appendingPathComponent("checkpoints/step-00000002")
        for resume in [["--resume", "--run-dir", run.path], ["--resume-from", checkpoint.path]] {
            let r = try Launch.run(try cli(), ["finetune", "--model", Self.shippedTeacher.path, "--train-limit", "96",
                                               "--batch-size", "48"] + resume, in: folder)
            #expect(r.status == 1, "\(resume): status \(r.status)")
            // The log lines before it are the run's start (info); the failure is one line.
            #expect(r.errorLines.filter { $0.hasPrefix("acq-dist:") } == ["acq-dist: error: checkpoint \(checkpoint.path) was saved by a pretrain run; finetune cannot continue it (resume it with the command that saved it)"],
                    "\(resume): stderr: \(r.err)")
        }
        #expect(try Data(contentsOf: run.appendingPathComponent("metrics.jsonl")) == log, "the refused resume touched the pretraining log")
    }
}
