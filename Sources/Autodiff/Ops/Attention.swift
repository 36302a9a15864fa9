import TensorCore

/// Spatial attention of a feature map: A[n, i, j] = mean over channels of F[n, c, i, j]^2.
/// - f: [N, C, h, w]. Returns [N, h, w].
public func attentionMap(_ f: Variable) -> Variable {
    let s = f.shape
    precondition(s.count == 4, "attention map of [N, C, h, w], got \(s)")
    let (n, c, hw) = (s[0], s[1], s[2] * s[3])
    let fv = f.value
    var a = Tensor.zeros([n, s[2], s[3]])
    fv.withUnsafeBufferPointer { fp in
        a.withUnsafeMutableBufferPointer { ap in
            for b in 0..<n {
                for ch in 0..<c {
                    let src = fp.baseAddress! + (b * c + ch) * hw, dst = ap.baseAddress! + b * hw
                    for k in 0..<hw { dst[k] += src[k] * src[k] }
                }
                for k in 0..<hw { ap[b * hw + k] /= Float(c) }
            }
        }
    }
    return record(a, [f], saving: [fv]) { ga, _ in
        // dA/dF = 2 F / C.
        var gf = Tensor(uninitializedShape: s)
        fv.withUnsafeBufferPointer { fp in
            ga.withUnsafeBufferPointer { gp in
                gf.withUnsafeMutableBufferPointer { d in
                    for b in 0..<n {
                        for ch in 0..<c {
                            let off = (b * c + ch) * hw
                            for k in 0..<hw { d[off + k] = 2 * fp[off + k] * gp[b * hw + k] / Float(c) }
                        }
                    }
                }
            }
        }
        return [gf]
    }
}

/// Each sample divided by its own sum: P = A / sum(A) over all but the first axis.
/// - a: [N, ...] with positive sums. Same shape out.
public func normalizedPerSample(_ a: Variable) -> Variable {
    let n = a.shape[0], k = a.value.count / Swift.max(n, 1)
    let av = a.value
    var sums = [Float](repeating: 0, count: n)
    var p = av
    p.withUnsafeMutableBufferPointer { pp in
        for b in 0..<n {
            var s: Float = 0
            for i in 0..<k { s += pp[b * k + i] }
            precondition(s > 0, "normalizedPerSample: sample \(b) sums to \(s)")
            sums[b] = s
            for i in 0..<k { pp[b * k + i] /= s }
        }
    }
    return record(p, [a], saving: [p]) { gp, _ in
        // dL/dA_i = (g_i - sum_m g_m P_m) / S.
        var ga = Tensor(uninitializedShape: av.shape)
        gp.withUnsafeBufferPointer { g in
            p.withUnsafeBufferPointer { pv in
                ga.withUnsafeMutableBufferPointer { d in
                    for b in 0..<n {
                        var dot: Float = 0
                        for i in 0..<k { dot += g[b * k + i] * pv[b * k + i] }
                        for i in 0..<k { d[b * k + i] = (g[b * k + i] - dot) / sums[b] }
                    }
                }
            }
        }
        return [ga]
    }
}

/// Centroid of a distribution over an h x w grid with coordinates u_j, v_i evenly spaced on
/// [-1, 1]: (sum P u_j, sum P v_i). - p: [N, h, w]. Returns [N, 2] as (x, y).
public func weightedCentroid(_ p: Variable) -> Variable {
    let s = p.shape
    precondition(s.count == 3, "centroid of [N, h, w], got \(s)")
    let (n, h, w) = (s[0], s[1], s[2])
    let u = (0..<w).map { w == 1 ? 0 : -1 + 2 * Float($0) / Float(w - 1) }
    let v = (0..<h).map { h == 1 ? 0 : -1 + 2 * Float($0) / Float(h - 1) }
    var c = Tensor.zeros([n, 2])
    let pv = p.value
    for b in 0..<n {
        var x: Float = 0, y: Float = 0
        for i in 0..<h {
            for j in 0..<w {
                let q = pv[flat: (b * h + i) * w + j]
                x += q * u[j]; y += q * v[i]
            }
        }
        c[flat: 2 * b] = x; c[flat: 2 * b + 1] = y
    }
    return record(c, [p]) { gc, _ in
        var gp = Tensor(uninitializedShape: s)
        for b in 0..<n {
            let (gx, gy) = (gc[flat: 2 * b], gc[flat: 2 * b + 1])
            for i in 0..<h {
                for j in 0..<w { gp[flat: (b * h + i) * w + j] = gx * u[j] + gy * v[i] }
            }
        }
        return [gp]
    }
}

/// Mean and biased variance per channel of an [N, C, ...] tensor, over all other axes (and over
/// all ranks when a reducer is given): the statistics a batch norm would normalise with.
/// Returns [2, C]: row 0 the means, row 1 the variances.
public func channelMoments(_ x: Variable, reducer: BatchStatisticsReducer? = nil) -> Variable {
    let xv = x.value
    let c = xv.shape[1]
    let sums = sumOverRows(xv.channelSumsPerSample(appending: Double(xv.count / Swift.max(xv.shape[0] * c, 1))),
                           width: 2 * c + 1, reducer: reducer)
    let total = sums[2 * c]
    let mean = (0..<c).map { sums[$0] / total }
    let variance = (0..<c).map { Swift.max(sums[c + $0] / total - mean[$0] * mean[$0], 0) }
    let out = Tensor(shape: [2, c], scalars: mean.map { Float($0) } + variance.map { Float($0) })
    let meanF = mean.map { Float($0) }
    return record(out, [x], saving: [xv]) { g, _ in
        // d mean_c / dx = 1/n; d var_c / dx = 2 (x - mean_c) / n, n the global count: each rank
        // differentiates through its own samples.
        let gm = (0..<c).map { g[flat: $0] / Float(total) }
        let gv = (0..<c).map { 2 * g[flat: c + $0] / Float(total) }
        let shift = (0..<c).map { gm[$0] - gv[$0] * meanF[$0] }
        return [xv.channelAffine(scale: gv, shift: shift)]
    }
}
