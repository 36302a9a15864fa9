import Foundation
import Testing

// `acq-dist quantize` and `eval --student/--integer` as a user runs them: a tiny PTQ run makes a
// student and an integer model; wrong roles and bad bit widths give one clear line.
@Suite struct QuantizeCLITests {
    /// A teacher, and the student and integer model that a short PTQ run makes of it.
    static func artefacts() throws -> (teacher: URL, student: URL, integer: URL) {
        let dir = try temporaryFolder()
        let teacher = dir.appendingPathComponent("teacher.safetensors")
        try writeTeacher(to: teacher)
        let student = dir.appendingPathComponent("student.safetensors"), integer = dir.appendingPathComponent("int.safetensors")
        let r = try runCLI(["quantize", "--method", "ptq", "--teacher", teacher.path, "--wbits", "4", "--abits", "4",
                            "--calibration-batches", "2", "--calibration-batch-size", "8", "--test-limit", "100",
                            "--output", student.path, "--export", integer.path, "--run-dir", dir.appendingPathComponent("run").path])
        guard r.status == 0 else { throw CLITestError("quantize failed: \(r.err)") }
        #expect(r.out.contains("ptq W4A4 (Gaussian-noise calibration, 2 batches of 8; data-free)"), "stdout: \(r.out)")
        #expect(r.out.contains("integer model \(integer.path)"), "stdout: \(r.out)")
        return (teacher, student, integer)
    }

    @Test func studentAndIntegerModelEvaluateAndRefuseTheWrongRole() throws {
        let (teacher, student, integer) = try Self.artefacts()
        let s = try runCLI(["eval", "--student", student.path])
        #expect(s.status == 0 && s.out.contains("fake-quantized W4A4"), "stdout: \(s.out) stderr: \(s.err)")
        let i = try runCLI(["eval", "--integer", integer.path])
        #expect(i.status == 0 && i.out.contains("integer arithmetic"), "stdout: \(i.out) stderr: \(i.err)")

        for (args, expected) in [
            (["eval", "--model", student.path], "\(student.path): this is a student file, expected a teacher file"),
            (["quantize", "--method", "ptq", "--teacher", student.path], "\(student.path): this is a student file, expected a teacher file"),
            (["eval", "--student", teacher.path], "\(teacher.path): this is a teacher file, expected a student file"),
            (["eval", "--integer", student.path], "\(student.path): this is a student file, expected an integer file"),
            (["eval", "--model", integer.path], "\(integer.path): this is an integer file, expected a teacher file"),
        ] {
            let r = try runCLI(args)
            #expect(r.status == 1)
            #expect(r.err == "acq-dist: error: \(expected)\n", "stderr for \(args): \(r.err)")
        }
    }

    @Test(arguments: [
        (["--wbits", "9"], "--wbits 9: bit widths must be 2 to 8"),
        (["--abits", "1"], "--abits 1: bit widths must be 2 to 8"),
        (["--weight-scheme", "per-row"], "--weight-scheme"),
        (["--calibration-batches", "0"], "--calibration-batches must be at least 1"),
        (["--weight-range", "percentile"], "The value 'percentile' is invalid for '--weight-range"),
        (["--activation-range", "MSE"], "The value 'MSE' is invalid for '--activation-range"),
    ])
    func badQuantizationOptionsNameTheOption(_ extra: [String], _ expected: String) throws {
        let r = try runCLI(["quantize", "--method", "ptq", "--teacher", "/nonexistent.safetensors"] + extra)
        #expect(r.status != 0)
        #expect(r.err.split(separator: "\n").first?.contains(expected) == true, "stderr for \(extra): \(r.err)")
    }

    @Test func missingMethodIsNamed() throws {
        let r = try runCLI(["quantize"])
        #expect(r.status != 0 && r.err.contains("--method"), "stderr: \(r.err)")
    }
}
