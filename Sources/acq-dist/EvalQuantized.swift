import Data
import Foundation
import Logging
import Methods
import Quantization

/// `eval --student FILE` and `eval --integer FILE`: test accuracy of a fake-quantized student and
/// of an exported integer model (integer convolutions and classifier).
func evaluateQuantized(student: String?, integer: String?, data: DataOptions, logger: Logger) throws {
    let test = try data.load(.test)
    func imageShape(_ shape: [Int], of file: String) throws {
        guard shape == [test.channels, test.height, test.width] else {
            throw RunError("\(file) takes images \(shape), \(test.name) has [\(test.channels), \(test.height), \(test.width)]")
        }
    }
    func existing(_ path: String) throws -> URL {
        guard FileManager.default.fileExists(atPath: path) else { throw RunError("model file \(path) does not exist") }
        return URL(fileURLWithPath: path)
    }
    if let student {
        let (model, metadata) = try StudentFile.load(try existing(student))
        try imageShape(metadata.imageShape, of: student)
        try model.requireCalibrated(model: student)
        let start = Date()
        let result = evaluate(model, on: test, progress: Progress(label: "eval", total: test.count, logger: logger))
        print(String(format: "%@ (fake-quantized %@) on %@ test (%d images): accuracy %.2f%%, loss %.4f (%.1f s)",
                     student, model.quantization.name, test.name, test.count, 100 * result.accuracy, result.loss,
                     Date().timeIntervalSince(start)))
    }
    if let integer {
        let (model, metadata) = try IntegerFile.load(try existing(integer))
        try imageShape(metadata.imageShape, of: integer)
        let start = Date()
        let result = evaluate(on: test, progress: Progress(label: "eval", total: test.count, logger: logger)) { model.logits($0) }
        print(String(format: "%@ (integer arithmetic) on %@ test (%d images): accuracy %.2f%%, loss %.4f (%.1f s)",
                     integer, test.name, test.count, 100 * result.accuracy, result.loss, Date().timeIntervalSince(start)))
    }
}
