import Checkpoint
import Foundation
import Testing

/// The shipped teacher evaluates to the accuracy recorded in its metadata (and in
/// docs/results.md), above the floor of 92.5 %.
@Suite struct ShippedTeacherTests {
    @Test func shippedTeacherReproducesItsAccuracy() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = root.appendingPathComponent("models/resnet20-fashion-mnist.safetensors")
        let (_, metadata) = try ModelFile.load(model)
        let recorded = try #require(metadata.notes["test_accuracy"].flatMap(Double.init))
        let r = try runCLI(["eval", "--model", model.path, "--threads", "2"])
        #expect(r.status == 0, "stderr: \(r.err)")
        let printed = try #require(r.out.split(separator: " ").first { $0.hasSuffix("%,") }.flatMap { Double($0.dropLast(2)) },
                                   "no accuracy in: \(r.out)")
        #expect(abs(printed / 100 - recorded) < 0.00015, "eval printed \(printed) %, the file records \(recorded)")
        #expect(printed >= 92.5)
    }
}
