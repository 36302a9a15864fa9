import TensorCore

/// Sums per-channel statistics across the processes that share one global batch
/// (synchronised batch norm). The single-process reducer leaves them as they are.
public protocol BatchStatisticsReducer: AnyObject {
    /// Element-wise sum of `values` over all participants, in place.
    func allReduceSum(_ values: inout [Double])
}

/// Batch statistics of one batch-norm forward: mean and biased variance per channel, and the
/// number of elements they were computed over (across all ranks when reduced).
public struct BatchStatistics {
    public var mean: [Double]
    public var variance: [Double]
    public var count: Int
}

/// Batch norm with batch statistics (train mode): y = gamma * (x - mean) / sqrt(var + eps) + beta.
/// - x: [N, C, ...]; gamma, beta: [C] or nil (affine-free).
/// - reducer: sums the statistics over ranks so they are those of the global batch, in forward
///   and in backward.
/// Returns the output and the statistics (for the running-statistics update).
public func batchNormTraining(_ x: Variable, gamma: Variable?, beta: Variable?, eps: Float,
                              reducer: BatchStatisticsReducer? = nil) -> (Variable, BatchStatistics) {
    let xv = x.value
    precondition(xv.rank >= 2, "batch norm input must be [N, C, ...], got \(xv.shape)")
    let (n, c) = (xv.shape[0], xv.shape[1])
    let inner = xv.count / Swift.max(n * c, 1)
    // sums[0..<c]: sum x; sums[c..<2c]: sum x^2; sums[2c]: element count.
    var sums = [Double](repeating: 0, count: 2 * c + 1)
    xv.withUnsafeBufferPointer { p in
        for ch in 0..<c {
            var s: Double = 0, ss: Double = 0
            for b in 0..<n {
                let base = (b * c + ch) * inner
                var ps: Float = 0, pss: Float = 0
                for i in 0..<inner { let v = p[base + i]; ps += v; pss += v * v }
                s += Double(ps); ss += Double(pss)
            }
            sums[ch] = s; sums[c + ch] = ss
        }
    }
    sums[2 * c] = Double(n * inner)
    reducer?.allReduceSum(&sums)
    let total = sums[2 * c]
    precondition(total > 0, "batch norm over an empty batch")
    var stats = BatchStatistics(mean: [], variance: [], count: Int(total))
    stats.mean = (0..<c).map { sums[$0] / total }
    stats.variance = (0..<c).map { Swift.max(sums[c + $0] / total - stats.mean[$0] * stats.mean[$0], 0) }
    let invStd = stats.variance.map { Float(1 / ($0 + Double(eps)).squareRoot()) }
    let meanF = stats.mean.map { Float($0) }
    let gammaV = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
    let betaV = beta?.value.scalars ?? [Float](repeating: 0, count: c)

    // xhat is kept for backward; y = gamma * xhat + beta.
    var xhat = Tensor(uninitializedShape: xv.shape)
    var y = Tensor(uninitializedShape: xv.shape)
    xv.withUnsafeBufferPointer { p in
        xhat.withUnsafeMutableBufferPointer { h in
            y.withUnsafeMutableBufferPointer { o in
                for b in 0..<n {
                    for ch in 0..<c {
                        let base = (b * c + ch) * inner
                        let (m, s, gm, bt) = (meanF[ch], invStd[ch], gammaV[ch], betaV[ch])
                        for i in 0..<inner {
                            let v = (p[base + i] - m) * s
                            h[base + i] = v
                            o[base + i] = v * gm + bt
                        }
                    }
                }
            }
        }
    }
    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let hasGamma = gamma != nil
    let out = record(y, inputs) { gy, needs in
        // Per channel: sum dy and sum dy*xhat, over the global batch.
        var red = [Double](repeating: 0, count: 2 * c)
        gy.withUnsafeBufferPointer { g in
            xhat.withUnsafeBufferPointer { h in
                for ch in 0..<c {
                    var s: Double = 0, sh: Double = 0
                    for b in 0..<n {
                        let base = (b * c + ch) * inner
                        var ps: Float = 0, psh: Float = 0
                        for i in 0..<inner { ps += g[base + i]; psh += g[base + i] * h[base + i] }
                        s += Double(ps); sh += Double(psh)
                    }
                    red[ch] = s; red[c + ch] = sh
                }
            }
        }
        let localDBeta = Tensor(shape: [c], scalars: red[0..<c].map { Float($0) })
        let localDGamma = Tensor(shape: [c], scalars: red[c..<(2 * c)].map { Float($0) })
        var gx: Tensor? = nil
        if needs[0] {
            reducer?.allReduceSum(&red)
            var dx = Tensor(uninitializedShape: xv.shape)
            gy.withUnsafeBufferPointer { g in
                xhat.withUnsafeBufferPointer { h in
                    dx.withUnsafeMutableBufferPointer { d in
                        for ch in 0..<c {
                            let k = gammaV[ch] * invStd[ch]
                            let mg = Float(red[ch] / total), mgh = Float(red[c + ch] / total)
                            for b in 0..<n {
                                let base = (b * c + ch) * inner
                                for i in 0..<inner {
                                    d[base + i] = k * (g[base + i] - mg - h[base + i] * mgh)
                                }
                            }
                        }
                    }
                }
            }
            gx = dx
        }
        // Parameter gradients stay local: the gradient all-reduce sums them over ranks.
        var result: [Tensor?] = [gx]
        if hasGamma { result.append(localDGamma) }
        if beta != nil { result.append(localDBeta) }
        return result
    }
    return (out, stats)
}

/// Batch norm with fixed statistics (eval mode): y = gamma * (x - mean) / sqrt(var + eps) + beta.
/// - x: [N, C, ...]; runningMean, runningVar: [C].
public func batchNormInference(_ x: Variable, gamma: Variable?, beta: Variable?,
                               runningMean: Tensor, runningVar: Tensor, eps: Float) -> Variable {
    let xv = x.value
    precondition(xv.rank >= 2, "batch norm input must be [N, C, ...], got \(xv.shape)")
    let (n, c) = (xv.shape[0], xv.shape[1])
    precondition(runningMean.count == c && runningVar.count == c,
                 "batch norm statistics of \(runningMean.count) channels for input \(xv.shape)")
    let inner = xv.count / Swift.max(n * c, 1)
    let mean = runningMean.scalars
    let invStd = runningVar.scalars.map { 1 / ($0 + eps).squareRoot() }
    let gammaV = gamma?.value.scalars ?? [Float](repeating: 1, count: c)
    let betaV = beta?.value.scalars ?? [Float](repeating: 0, count: c)
    var y = Tensor(uninitializedShape: xv.shape)
    xv.withUnsafeBufferPointer { p in
        y.withUnsafeMutableBufferPointer { o in
            for b in 0..<n {
                for ch in 0..<c {
                    let base = (b * c + ch) * inner
                    let k = gammaV[ch] * invStd[ch]
                    let shift = betaV[ch] - mean[ch] * k
                    for i in 0..<inner { o[base + i] = p[base + i] * k + shift }
                }
            }
        }
    }
    var inputs = [x]
    if let gamma { inputs.append(gamma) }
    if let beta { inputs.append(beta) }
    let hasGamma = gamma != nil
    return record(y, inputs) { gy, needs in
        var gx: Tensor? = nil
        if needs[0] {
            var dx = Tensor(uninitializedShape: xv.shape)
            gy.withUnsafeBufferPointer { g in
                dx.withUnsafeMutableBufferPointer { d in
                    for b in 0..<n {
                        for ch in 0..<c {
                            let base = (b * c + ch) * inner
                            let k = gammaV[ch] * invStd[ch]
                            for i in 0..<inner { d[base + i] = g[base + i] * k }
                        }
                    }
                }
            }
            gx = dx
        }
        var result: [Tensor?] = [gx]
        if hasGamma {
            // dgamma = sum dy * xhat with xhat = (x - mean) * invStd.
            var dg = [Float](repeating: 0, count: c)
            gy.withUnsafeBufferPointer { g in
                xv.withUnsafeBufferPointer { p in
                    for b in 0..<n {
                        for ch in 0..<c {
                            let base = (b * c + ch) * inner
                            var s: Float = 0
                            for i in 0..<inner { s += g[base + i] * (p[base + i] - mean[ch]) }
                            dg[ch] += s * invStd[ch]
                        }
                    }
                }
            }
            result.append(Tensor(shape: [c], scalars: dg))
        }
        if beta != nil { result.append(gy.sumPerChannel()) }
        return result
    }
}
