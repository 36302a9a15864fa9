import Foundation
import Safetensors
import TensorCore

/// ||a - b|| / ||b|| (Euclidean) over the concatenation of the given tensors.
func relativeDifference(_ a: [Tensor], _ b: [Tensor]) -> Double {
    var diff = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        precondition(x.shape == y.shape, "comparing \(x.shape) with \(y.shape)")
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                for i in 0..<xp.count {
                    let d = Double(xp[i]) - Double(yp[i])
                    diff += d * d
                    norm += Double(yp[i]) * Double(yp[i])
                }
            }
        }
    }
    return norm == 0 ? (diff == 0 ? 0 : .infinity) : (diff / norm).squareRoot()
}

/// The worst per-tensor relative difference between two files of the same tensors.
func worstTensorDifference(_ a: SafetensorsFile, _ b: SafetensorsFile) throws -> (name: String, value: Double) {
    var worst = ("", 0.0)
    for name in b.names {
        let d = relativeDifference([try a.tensor(name)], [try b.tensor(name)])
        if d > worst.1 { worst = (name, d) }
    }
    return worst
}

/// The relative difference over all tensors whose names satisfy `filter`, as one vector.
func vectorDifference(_ a: SafetensorsFile, _ b: SafetensorsFile, where filter: (String) -> Bool) throws -> Double {
    let names = b.names.filter(filter)
    return relativeDifference(try names.map { try a.tensor($0) }, try names.map { try b.tensor($0) })
}

func isBuffer(_ name: String) -> Bool { name.hasSuffix("running_mean") || name.hasSuffix("running_var") || name.hasSuffix("num_batches_tracked") }
