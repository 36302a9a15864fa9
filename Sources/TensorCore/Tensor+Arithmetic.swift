// Element-wise arithmetic and reductions. Each loop runs over raw buffers so that the compiler
// can vectorise it; shapes are checked before any pointer is touched.

extension Tensor {
    /// f applied to every element.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<a.count { o[i] = f(a[i]) }
            }
        }
        return out
    }

    /// f applied to matching elements of two tensors of equal shape.
    @inlinable
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "element-wise shapes differ: \(shape) vs \(other.shape)")
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<a.count { o[i] = f(a[i], b[i]) }
                }
            }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, *) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map { $0 * s } }

    /// self += alpha * other (shapes must have equal element counts).
    @inlinable
    public mutating func add(_ other: Tensor, scaledBy alpha: Float = 1) {
        precondition(count == other.count, "add: \(shape) += \(other.shape)")
        other.withUnsafeBufferPointer { b in
            withUnsafeMutableBufferPointer { a in
                if alpha == 1 {
                    for i in 0..<a.count { a[i] += b[i] }
                } else {
                    for i in 0..<a.count { a[i] += alpha * b[i] }
                }
            }
        }
    }

    public mutating func scale(by s: Float) {
        withUnsafeMutableBufferPointer { a in for i in 0..<a.count { a[i] *= s } }
    }

    public func sum() -> Float {
        // Double accumulation: reductions over a whole batch must not drift with its size.
        withUnsafeBufferPointer { a in
            var s: Double = 0
            for v in a { s += Double(v) }
            return Float(s)
        }
    }

    public func mean() -> Float { count == 0 ? 0 : sum() / Float(count) }

    /// Euclidean norm of all elements.
    public func norm() -> Float {
        withUnsafeBufferPointer { a in Float(a.reduce(Double(0)) { $0 + Double($1) * Double($1) }.squareRoot()) }
    }

    public func maxAbs() -> Float { withUnsafeBufferPointer { $0.reduce(0) { Swift.max($0, abs($1)) } } }

    /// Per-channel sum of an [N, C, ...] tensor -> [C]: each (sample, channel) run summed in
    /// Float (16 lanes, on the kernel threads), the runs added in Double in sample order, so the
    /// result does not depend on the thread count. (A conv bias's gradient: every convolution
    /// of a tune-mode student has one; a serial scalar pass made tune slower than eval.)
    public func sumPerChannel() -> Tensor {
        precondition(rank >= 2, "sumPerChannel needs [N, C, ...], got \(shape)")
        let (n, c) = (shape[0], shape[1])
        let rows = channelSumsPerSample(squares: false)
        var sums = [Double](repeating: 0, count: c)
        for b in 0..<n { for ch in 0..<c { sums[ch] += rows[b * 2 * c + ch] } }
        return Tensor(shape: [c], scalars: sums.map { Float($0) })
    }

    /// Adds bias[c] to every element of channel c of an [N, C, ...] tensor.
    public mutating func addChannelBias(_ bias: Tensor) {
        precondition(rank >= 2 && bias.count == shape[1], "bias \(bias.shape) for tensor \(shape)")
        let (n, c) = (shape[0], shape[1])
        let inner = count / Swift.max(n * c, 1)
        bias.withUnsafeBufferPointer { bp in
            withUnsafeMutableBufferPointer { a in
                for b in 0..<n {
                    for ch in 0..<c {
                        let base = (b * c + ch) * inner
                        let v = bp[ch]
                        for i in 0..<inner { a[base + i] += v }
                    }
                }
            }
        }
    }

    /// Concatenation along axis 1 of tensors that agree on every other axis.
    public static func concatenate(channels parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenate of no tensors")
        let n = parts[0].shape[0]
        let rest = Array(parts[0].shape.dropFirst(2))
        for p in parts {
            precondition(p.rank == parts[0].rank && p.shape[0] == n && Array(p.shape.dropFirst(2)) == rest,
                         "concatenate: shapes \(parts.map(\.shape)) differ outside axis 1")
        }
        let inner = rest.reduce(1, *)
        let total = parts.reduce(0) { $0 + $1.shape[1] }
        var out = Tensor(uninitializedShape: [n, total] + rest)
        out.withUnsafeMutableBufferPointer { o in
            var c0 = 0
            for p in parts {
                let c = p.shape[1]
                p.withUnsafeBufferPointer { src in
                    for b in 0..<n {
                        (o.baseAddress! + (b * total + c0) * inner)
                            .update(from: src.baseAddress! + b * c * inner, count: c * inner)
                    }
                }
                c0 += c
            }
        }
        return out
    }

    /// Channels `range` of an [N, C, ...] tensor.
    public func channels(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 2 && range.lowerBound >= 0 && range.upperBound <= shape[1],
                     "channels \(range) of \(shape)")
        let (n, c) = (shape[0], shape[1])
        let inner = count / Swift.max(n * c, 1)
        var out = Tensor(uninitializedShape: [n, range.count] + shape.dropFirst(2))
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { o in
                for b in 0..<n {
                    (o.baseAddress! + b * range.count * inner)
                        .update(from: src.baseAddress! + (b * c + range.lowerBound) * inner,
                                count: range.count * inner)
                }
            }
        }
        return out
    }

    /// Tensors that agree on every axis but the first, one after the other along it.
    public static func concatenate(rows parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "concatenate of no tensors")
        let rest = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == rest },
                     "concatenate: shapes \(parts.map(\.shape)) differ outside axis 0")
        var out = Tensor(uninitializedShape: [parts.reduce(0) { $0 + $1.shape[0] }] + rest)
        out.withUnsafeMutableBufferPointer { o in
            var at = 0
            for p in parts {
                p.withUnsafeBufferPointer { (o.baseAddress! + at).update(from: $0.baseAddress!, count: $0.count) }
                at += p.count
            }
        }
        return out
    }

    /// Rows `range` of the first axis (a contiguous slice, copied).
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "rows \(range) of \(shape)")
        let inner = count / Swift.max(shape[0], 1)
        var out = Tensor(uninitializedShape: [range.count] + shape.dropFirst())
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { o in
                o.baseAddress!.update(from: src.baseAddress! + range.lowerBound * inner, count: range.count * inner)
            }
        }
        return out
    }

    /// Largest |a - b| / (atol + rtol * |b|) over all elements; <= 1 means "close".
    public func closeness(to b: Tensor, rtol: Float, atol: Float) -> Float {
        precondition(shape == b.shape, "closeness: \(shape) vs \(b.shape)")
        var worst: Float = 0
        withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                for i in 0..<x.count {
                    let r = abs(x[i] - y[i]) / (atol + rtol * abs(y[i]))
                    if !(r <= worst) { worst = r.isNaN ? .infinity : r }
                }
            }
        }
        return worst
    }
}
