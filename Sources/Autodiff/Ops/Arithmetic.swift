import TensorCore

/// a + b (same shape).
public func + (a: Variable, b: Variable) -> Variable {
    record(a.value + b.value, [a, b]) { gy, _ in [gy, gy] }
}

/// a - b (same shape).
public func - (a: Variable, b: Variable) -> Variable {
    record(a.value - b.value, [a, b]) { gy, needs in [gy, needs[1] ? gy * -1 : nil] }
}

/// a * b element-wise (same shape).
public func * (a: Variable, b: Variable) -> Variable {
    let (av, bv) = (a.value, b.value)
    return record(av * bv, [a, b], saving: [av, bv]) { gy, needs in [needs[0] ? gy * bv : nil, needs[1] ? gy * av : nil] }
}

/// a * s for a constant s.
public func * (a: Variable, s: Float) -> Variable {
    record(a.value * s, [a]) { gy, _ in [gy * s] }
}

public func * (s: Float, a: Variable) -> Variable { a * s }

/// The same elements under another shape.
public func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
    let old = x.shape
    return record(x.value.reshaped(shape), [x]) { gy, _ in [gy.reshaped(old)] }
}

/// [N, ...] -> [N, rest].
public func flatten(_ x: Variable) -> Variable { reshape(x, [x.shape[0], -1]) }

/// Concatenation along axis 1 (channels).
public func concatenate(channels parts: [Variable]) -> Variable {
    let widths = parts.map { $0.shape[1] }
    return record(Tensor.concatenate(channels: parts.map(\.value)), parts) { gy, needs in
        var c0 = 0
        return zip(widths, needs).map { w, need in
            defer { c0 += w }
            return need ? gy.channels(c0..<(c0 + w)) : nil
        }
    }
}

/// Sum of all elements, as a one-element tensor of shape [].
public func sum(_ x: Variable) -> Variable {
    let shape = x.shape
    return record(Tensor.scalar(x.value.sum()), [x]) { gy, _ in [Tensor(shape: shape, repeating: gy.item)] }
}

/// Mean of all elements, as a one-element tensor of shape [].
public func mean(_ x: Variable) -> Variable {
    let shape = x.shape
    let n = Float(x.value.count)
    return record(Tensor.scalar(x.value.sum() / n), [x]) { gy, _ in [Tensor(shape: shape, repeating: gy.item / n)] }
}

/// Rows of a table picked by index: the label embedding of the generator.
/// - table: [rows, dim]; indices: N values in 0..<rows. Returns [N, dim].
public func embedding(_ table: Variable, indices: [Int]) -> Variable {
    precondition(table.value.rank == 2, "embedding table must be [rows, dim], got \(table.shape)")
    let (rows, dim) = (table.shape[0], table.shape[1])
    for i in indices { precondition(i >= 0 && i < rows, "embedding index \(i) outside 0..<\(rows)") }
    var y = Tensor(uninitializedShape: [indices.count, dim])
    table.value.withUnsafeBufferPointer { t in
        y.withUnsafeMutableBufferPointer { o in
            for (r, i) in indices.enumerated() {
                (o.baseAddress! + r * dim).update(from: t.baseAddress! + i * dim, count: dim)
            }
        }
    }
    return record(y, [table]) { gy, _ in
        if collectsSampleOrder(table) != nil {
            // Each sample's row of the table gradient is its dy in its label's row, zero elsewhere.
            let n = indices.count
            var perSample = [Float](repeating: 0, count: n * rows * dim)
            gy.withUnsafeBufferPointer { g in
                for (r, i) in indices.enumerated() {
                    for j in 0..<dim { perSample[(r * rows + i) * dim + j] = g[r * dim + j] }
                }
            }
            return [sampleOrderedGradient(perSample, samples: n, shape: [rows, dim], leaf: table)]
        }
        var gt = Tensor.zeros([rows, dim])
        gy.withUnsafeBufferPointer { g in
            gt.withUnsafeMutableBufferPointer { d in
                for (r, i) in indices.enumerated() {
                    for j in 0..<dim { d[i * dim + j] += g[r * dim + j] }
                }
            }
        }
        return [gt]
    }
}

/// |x| element-wise (gradient sign(x), 0 at 0).
public func abs(_ x: Variable) -> Variable {
    let xv = x.value
    return record(xv.map { Swift.abs($0) }, [x], saving: [xv]) { gy, _ in
        [gy.zipMap(xv) { g, v in v > 0 ? g : (v < 0 ? -g : 0) }]
    }
}

/// x + s for a constant s.
public func + (x: Variable, s: Float) -> Variable {
    record(x.value.map { $0 + s }, [x]) { gy, _ in [gy] }
}

/// 1 / x element-wise.
public func reciprocal(_ x: Variable) -> Variable {
    let y = x.value.map { 1 / $0 }
    return record(y, [x], saving: [y]) { gy, _ in [gy.zipMap(y) { g, r in -g * r * r }] }
}

/// Rows of the first axis picked by index (a row may appear more than once).
/// - x: [N, ...]. Returns [indices.count, ...].
public func selectRows(_ x: Variable, _ indices: [Int]) -> Variable {
    let n = x.shape[0], inner = x.value.count / Swift.max(n, 1)
    for i in indices { precondition(i >= 0 && i < n, "row \(i) outside 0..<\(n)") }
    var y = Tensor(uninitializedShape: [indices.count] + x.shape.dropFirst())
    x.value.withUnsafeBufferPointer { src in
        y.withUnsafeMutableBufferPointer { dst in
            for (r, i) in indices.enumerated() {
                (dst.baseAddress! + r * inner).update(from: src.baseAddress! + i * inner, count: inner)
            }
        }
    }
    let shape = x.shape
    return record(y, [x]) { gy, _ in
        var gx = Tensor.zeros(shape)
        gy.withUnsafeBufferPointer { g in
            gx.withUnsafeMutableBufferPointer { d in
                for (r, i) in indices.enumerated() {
                    for k in 0..<inner { d[i * inner + k] += g[r * inner + k] }
                }
            }
        }
        return [gx]
    }
}

/// Mean of all elements over every participant of `reducer` (the global batch): each rank passes
/// its own elements, gets the same value, and backward sends g / (global count) to its own.
/// Without a reducer, `mean`.
public func globalMean(_ x: Variable, reducer: BatchStatisticsReducer?) -> Variable {
    // Per row of the leading axis: its sum and element count, added over the global batch in
    // sample order.
    let rows = x.value.rank == 0 ? 1 : x.shape[0]
    let width = x.value.count / Swift.max(rows, 1)
    var perRow = [Double](repeating: Double(width), count: 2 * rows)
    x.value.withUnsafeBufferPointer { v in
        for r in 0..<rows {
            var s: Double = 0
            for i in 0..<width { s += Double(v[r * width + i]) }
            perRow[2 * r] = s
        }
    }
    let sums = sumOverRows(perRow, width: 2, reducer: reducer)
    let total = sums[1]
    precondition(total > 0, "globalMean of no elements")
    let shape = x.shape
    return record(Tensor.scalar(Float(sums[0] / total)), [x]) { gy, _ in
        [Tensor(shape: shape, repeating: gy.item / Float(total))]
    }
}
