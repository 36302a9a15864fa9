import Foundation
import Safetensors
import TensorCore
import Testing

/// Reference tensors computed with PyTorch (see Fixtures/golden/README.md).
public enum Golden {
    /// The folder holding the `.safetensors` files and their `INDEX*.json` listings.
    public static var directory: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "golden", withExtension: nil,
                                              subdirectory: "Fixtures") else {
                throw SafetensorsError.fileMissing(file: "Fixtures/golden (TestSupport resource bundle)")
            }
            return url
        }
    }

    /// Loads `Fixtures/golden/<name>.safetensors`.
    public static func load(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile.read(contentsOf: directory.appendingPathComponent("\(name).safetensors"))
    }

    /// Loads `Fixtures/<folder>/<name>.safetensors` (e.g. folder "optim" for the optimizer and
    /// schedule references written by scripts/make-optimizer-golden.py).
    public static func load(_ name: String, folder: String) throws -> SafetensorsFile {
        guard let url = Bundle.module.url(forResource: folder, withExtension: nil, subdirectory: "Fixtures") else {
            throw SafetensorsError.fileMissing(file: "Fixtures/\(folder) (TestSupport resource bundle)")
        }
        return try SafetensorsFile.read(contentsOf: url.appendingPathComponent("\(name).safetensors"))
    }
}

/// Records an issue unless `actual` has `expected`'s shape and every element satisfies
/// |a - e| <= atol + rtol * |e| (or is exactly equal, so zero tolerances mean "bit-identical");
/// the message locates the worst element so a failure is actionable without a debugger.
public func expectClose(_ actual: Tensor, _ expected: Tensor, rtol: Float, atol: Float, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.shape == expected.shape else {
        Issue.record("\(what): shape \(actual.shape), expected \(expected.shape)", sourceLocation: sourceLocation)
        return
    }
    var worst = (index: 0, ratio: -Float.infinity), failing = 0
    actual.withUnsafeBufferPointer { a in
        expected.withUnsafeBufferPointer { e in
            for i in 0..<a.count where !(a[i] == e[i] || abs(a[i] - e[i]) <= atol + rtol * abs(e[i])) {
                failing += 1
                let ratio = abs(a[i] - e[i]) / (atol + rtol * abs(e[i]))
                if !(ratio <= worst.ratio) { worst = (i, ratio.isNaN ? .infinity : ratio) }
            }
        }
    }
    guard failing > 0 else { return }
    var position: [Int] = [], rest = worst.index
    for d in actual.shape.reversed() {
        position.insert(rest % d, at: 0)
        rest /= d
    }
    let a = actual[flat: worst.index], e = expected[flat: worst.index]
    Issue.record("""
        \(what): \(failing) of \(actual.count) elements outside rtol \(rtol), atol \(atol); worst at \(position): \
        \(a) vs expected \(e) (|diff| \(abs(a - e)), \(worst.ratio)x tolerance)
        """, sourceLocation: sourceLocation)
}
