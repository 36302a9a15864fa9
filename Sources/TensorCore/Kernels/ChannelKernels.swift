// Per-channel passes over [N, C, ...] tensors (batch norm and friends): each channel is a
// strided set of N contiguous runs of `inner` elements. The samples are split over the kernel
// threads as the convolutions split them (`Compute.ranges` of the batch), so each thread reads
// the activations its own core wrote (split by channel, every thread read the other core's
// half of each channel: the passes took 2.5 times the CPU time at two threads), and each
// thread walks its block in memory order (walked channel by channel, a 7x7 layer's runs of 196
// bytes each began a new prefetch stream: training +9 % at one thread). Each run's result does
// not depend on the split. Inside a run the loops go 16 lanes at a time so the compiler emits
// vector code (a scalar Float reduction cannot be reordered into vectors by the optimizer). `addingProduct`
// is avoided: without FMA in the baseline target it becomes a libm call per lane.

typealias Lanes = SIMD16<Float>

@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }

@inline(__always)
func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }

/// The (N, C, inner) view of an [N, C, ...] tensor.
@usableFromInline
struct ChannelLayout {
    let n: Int, c: Int, inner: Int
    init(_ shape: [Int]) {
        precondition(shape.count >= 2, "per-channel kernel needs [N, C, ...], got \(shape)")
        n = shape[0]; c = shape[1]
        inner = shape.dropFirst(2).reduce(1, *)
    }
}

extension Tensor {
    /// Per channel: sum of g and sum of g * (x - center), for two tensors of the same shape
    /// (the per-sample sums of `channelDotSumsPerSample`, added over the samples in order).
    public func channelDotSums(with x: Tensor, center: [Float]) -> (sum: [Double], dot: [Double]) {
        let rows = channelDotSumsPerSample(with: x, center: center)
        let (n, c) = (shape[0], rows.count / Swift.max(shape[0], 1) / 2)
        var sums = [Double](repeating: 0, count: c), dots = sums
        for b in 0..<n {
            for ch in 0..<c { sums[ch] += rows[b * 2 * c + ch]; dots[ch] += rows[b * 2 * c + c + ch] }
        }
        return (sums, dots)
    }

    /// Per sample and channel: sum of x and sum of x^2, as rows of 2C values per sample
    /// (sums, then squares), for reductions in `SampleTree` order; `appending` values end
    /// every row (an element count).
    public func channelSumsPerSample(appending extra: Double...) -> [Double] {
        channelSumsPerSample(squares: true, extra: extra)
    }

    /// As above; without `squares` the second value of each run is 0 (not computed).
    func channelSumsPerSample(squares: Bool, extra: [Double] = []) -> [Double] {
        perSampleChannelRuns(self, self, extra: extra) { x, _, count, _ in
            var vs = Lanes(), vq = Lanes()
            var i = 0
            if squares {
                while i + 16 <= count { let v = loadLanes(x + i); vs += v; vq += v * v; i += 16 }
            } else {
                while i + 16 <= count { vs += loadLanes(x + i); i += 16 }
            }
            var ts = vs.sum(), tq = vq.sum()
            while i < count { ts += x[i]; if squares { tq += x[i] * x[i] }; i += 1 }
            return (ts, tq)
        }
    }

    /// Per sample and channel: sum of this gradient and sum of gradient * (x - center), as
    /// rows of 2C values per sample (the batch-norm backward sums, before any reduction).
    public func channelDotSumsPerSample(with x: Tensor, center: [Float]) -> [Double] {
        precondition(shape == x.shape, "channelDotSumsPerSample: \(shape) vs \(x.shape)")
        return perSampleChannelRuns(self, x, extra: []) { g, v, count, ch in
            let m = Lanes(repeating: center[ch])
            var vs = Lanes(), vd = Lanes()
            var i = 0
            while i + 16 <= count { let gv = loadLanes(g + i); vs += gv; vd += gv * (loadLanes(v + i) - m); i += 16 }
            var ts = vs.sum(), td = vd.sum()
            while i < count { ts += g[i]; td += g[i] * (v[i] - center[ch]); i += 1 }
            return (ts, td)
        }
    }

    /// y = x * scale[c] + shift[c] per channel.
    public func channelAffine(scale: [Float], shift: [Float]) -> Tensor {
        channelAffine(scale: scale, shift: shift, relu: false)
    }

    /// y = x * scale[c] + shift[c] per channel, then ReLU (`v > 0 ? v : 0`) when `relu`: batch
    /// norm and the ReLU after it in one pass.
    public func channelAffine(scale: [Float], shift: [Float], relu: Bool) -> Tensor {
        let l = ChannelLayout(shape)
        precondition(scale.count == l.c && shift.count == l.c, "channelAffine: \(scale.count) scales for \(shape)")
        var y = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                let pieces = Compute.ranges(l.n)
                Compute.parallelFor(pieces.count) { piece in
                    for n in pieces[piece] {
                        for ch in 0..<l.c {
                            let a = scale[ch], b = shift[ch]
                            let va = Lanes(repeating: a), vb = Lanes(repeating: b), zero = Lanes()
                            let off = (n * l.c + ch) * l.inner
                            let src = xp.baseAddress! + off, dst = yp.baseAddress! + off
                            var i = 0
                            if relu {
                                while i + 16 <= l.inner {
                                    let v = loadLanes(src + i) * va + vb
                                    storeLanes(zero.replacing(with: v, where: v .> zero), dst + i); i += 16
                                }
                                while i < l.inner { let v = src[i] * a + b; dst[i] = v > 0 ? v : 0; i += 1 }
                            } else {
                                while i + 16 <= l.inner { storeLanes(loadLanes(src + i) * va + vb, dst + i); i += 16 }
                                while i < l.inner { dst[i] = src[i] * a + b; i += 1 }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// out = g * alpha[c] + x * beta[c] + gamma[c] per channel (the batch-norm input gradient).
    public func channelLinearCombination(_ x: Tensor, alpha: [Float], beta: [Float], gamma: [Float]) -> Tensor {
        precondition(shape == x.shape, "channelLinearCombination: \(shape) vs \(x.shape)")
        let l = ChannelLayout(shape)
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { gp in
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    let pieces = Compute.ranges(l.n)
                    Compute.parallelFor(pieces.count) { piece in
                        for n in pieces[piece] {
                            for ch in 0..<l.c {
                                let (a, b, c) = (alpha[ch], beta[ch], gamma[ch])
                                let va = Lanes(repeating: a), vb = Lanes(repeating: b), vc = Lanes(repeating: c)
                                let off = (n * l.c + ch) * l.inner
                                let g = gp.baseAddress! + off, v = xp.baseAddress! + off, d = op.baseAddress! + off
                                var i = 0
                                while i + 16 <= l.inner {
                                    storeLanes(loadLanes(g + i) * va + (loadLanes(v + i) * vb + vc), d + i)
                                    i += 16
                                }
                                while i < l.inner { d[i] = g[i] * a + (v[i] * b + c); i += 1 }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Runs `body` over every (sample, channel) run of `a` and `b` (same shape) and returns rows of
/// 2C doubles per sample, the first and second results of each run, then `extra`.
private func perSampleChannelRuns(_ a: Tensor, _ b: Tensor, extra: [Double],
                                  _ body: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int) -> (Float, Float)) -> [Double] {
    let l = ChannelLayout(a.shape)
    let width = 2 * l.c + extra.count
    var rows = [Double](repeating: 0, count: l.n * width)
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            rows.withUnsafeMutableBufferPointer { r in
                let pieces = Compute.ranges(l.n)
                Compute.parallelFor(pieces.count) { piece in
                    for n in pieces[piece] {
                        for ch in 0..<l.c {
                            let off = (n * l.c + ch) * l.inner
                            let (u, v) = body(ap.baseAddress! + off, bp.baseAddress! + off, l.inner, ch)
                            r[n * width + ch] = Double(u)
                            r[n * width + l.c + ch] = Double(v)
                        }
                    }
                }
                for n in 0..<l.n { for (k, e) in extra.enumerated() { r[n * width + 2 * l.c + k] = e } }
            }
        }
    }
    return rows
}


// Element-wise passes over whole tensors, split into contiguous pieces over the kernel threads.
extension Tensor {
    /// Runs `body(start, count)` over `count` elements in pieces of whole 16-lane blocks.
    @inline(__always)
    static func splitElements(_ count: Int, _ body: (Int, Int) -> Void) {
        // Below about 64K elements a second thread costs more than it saves.
        let pieces = Compute.ranges((count + 15) / 16, pieces: count < 1 << 16 ? 1 : nil)
        Compute.parallelFor(pieces.count) { piece in
            let r = pieces[piece]
            let start = r.lowerBound * 16
            body(start, Swift.min(count, r.upperBound * 16) - start)
        }
    }

    /// out[i] = vector(self, other) 16 lanes at a time (`scalar` for the last few), over
    /// contiguous pieces on the kernel threads. The closures are inlined into the loops.
    @inline(__always)
    func zipLanes(_ other: Tensor, _ vector: (Lanes, Lanes) -> Lanes, _ scalar: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "element-wise shapes differ: \(shape) vs \(other.shape)")
        var y = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { ap in
            other.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { yp in
                    let (a, b, out) = (ap.baseAddress!, bp.baseAddress!, yp.baseAddress!)
                    Tensor.splitElements(ap.count) { start, count in
                        var i = start
                        let end = start + count
                        while i + 16 <= end { storeLanes(vector(loadLanes(a + i), loadLanes(b + i)), out + i); i += 16 }
                        while i < end { out[i] = scalar(a[i], b[i]); i += 1 }
                    }
                }
            }
        }
        return y
    }

    /// max(x, 0) as `x > 0 ? x : 0` (NaN gives 0).
    public func relu() -> Tensor {
        zipLanes(self, { v, _ in Lanes().replacing(with: v, where: v .> Lanes()) }, { v, _ in v > 0 ? v : 0 })
    }

    /// relu(self + other) for tensors of equal shape (a residual addition and its ReLU).
    public func addingReLU(_ other: Tensor) -> Tensor {
        zipLanes(other, { a, b in let v = a + b; return Lanes().replacing(with: v, where: v .> Lanes()) },
                 { a, b in let v = a + b; return v > 0 ? v : 0 })
    }

    /// This gradient where `output` (a ReLU's output) is positive, 0 elsewhere: ReLU's backward.
    public func maskedByPositive(_ output: Tensor) -> Tensor {
        zipLanes(output, { g, y in Lanes().replacing(with: g, where: y .> Lanes()) }, { g, y in y > 0 ? g : 0 })
    }
}
