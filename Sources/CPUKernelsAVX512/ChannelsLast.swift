// Channels-last pieces of the Winograd kernels: 16 channels per vector whatever the image size
// (the row-by-row transforms of Winograd.swift fill only as many lanes as a row has tiles).

/// Copies image [channels, height * width] into a channels-last layout: position (r, q) at
/// into + (r * rowStride + q) * lanes, 16 channels per vector, by 16 x 16 transposes in
/// registers of 16 consecutive positions (across rows, so narrow images fill the vectors).
/// Channels from `channels` up to `lanes` are written as zeros. Reads stop before `end`.
@inline(__always)
func transposeToChannelsLast(_ src: UnsafePointer<Float>, end: UnsafePointer<Float>, channels: Int, height: Int,
                             width: Int, into dst: UnsafeMutablePointer<Float>, rowStride: Int, lanes: Int) {
    let hw = height * width
    for c0 in stride(from: 0, to: lanes, by: 16) {
        var p0 = 0, r0 = 0, q0 = 0
        while p0 < hw {
            // Row k: channel c0 + k, positions p0 ..< p0 + 16 (lanes past the image hold other
            // data and are not stored).
            let first = src + c0 * hw + p0
            let inside = c0 + 16 <= channels && first + 15 * hw + 16 <= end
            @inline(__always) func row(_ k: Int) -> V {
                let p = first + k * hw
                if inside { return load(p) }
                guard c0 + k < channels else { return V() }
                return p + 16 <= end ? load(p) : loadGuarded(p, available: end - p)
            }
            let t = transposed16((row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7),
                                  row(8), row(9), row(10), row(11), row(12), row(13), row(14), row(15)))
            let valid = min(16, hw - p0)
            var r = r0, q = q0
            @inline(__always) func put(_ i: Int, _ v: V) {
                guard i < valid else { return }
                store(v, dst + (r * rowStride + q) * lanes + c0)
                q += 1
                if q == width { q = 0; r += 1 }
            }
            put(0, t.0); put(1, t.1); put(2, t.2); put(3, t.3); put(4, t.4); put(5, t.5); put(6, t.6); put(7, t.7)
            put(8, t.8); put(9, t.9); put(10, t.10); put(11, t.11); put(12, t.12); put(13, t.13); put(14, t.14); put(15, t.15)
            (r0, q0) = (r, q)
            p0 += 16
        }
    }
}

typealias V16x16 = (V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V)

// Shuffles of the 16 x 16 transpose, written lane by lane; each is one instruction with an
// immediate (vunpcklps / vunpckhps, vunpcklpd / vunpckhpd, vshuff32x4): no index vectors to keep
// in registers (the permute form of `interleave` needed 64 of them, reloaded from memory).

/// Within each 128-bit lane: a0 b0 a1 b1 (lo) and a2 b2 a3 b3 (hi).
@inline(__always) private func unpackLo(_ a: V, _ b: V) -> V {
    V(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5], a[8], b[8], a[9], b[9], a[12], b[12], a[13], b[13])
}
@inline(__always) private func unpackHi(_ a: V, _ b: V) -> V {
    V(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7], a[10], b[10], a[11], b[11], a[14], b[14], a[15], b[15])
}
/// Within each 128-bit lane, pairs: a0 a1 b0 b1 (lo) and a2 a3 b2 b3 (hi).
@inline(__always) private func unpackLoPairs(_ a: V, _ b: V) -> V {
    V(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5], a[8], a[9], b[8], b[9], a[12], a[13], b[12], b[13])
}
@inline(__always) private func unpackHiPairs(_ a: V, _ b: V) -> V {
    V(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7], a[10], a[11], b[10], b[11], a[14], a[15], b[14], b[15])
}
/// 128-bit lanes 0, 2 of a then 0, 2 of b; and 1, 3 of a then 1, 3 of b.
@inline(__always) private func evenQuads(_ a: V, _ b: V) -> V {
    V(a[0], a[1], a[2], a[3], a[8], a[9], a[10], a[11], b[0], b[1], b[2], b[3], b[8], b[9], b[10], b[11])
}
@inline(__always) private func oddQuads(_ a: V, _ b: V) -> V {
    V(a[4], a[5], a[6], a[7], a[12], a[13], a[14], a[15], b[4], b[5], b[6], b[7], b[12], b[13], b[14], b[15])
}

/// The 16 x 16 transpose of 16 vectors. After the two unpack rounds, u[4g + m] holds in lane L
/// rows 4g ..< 4g + 4 at column 4L + m; the two rounds of 128-bit lane shuffles then gather
/// output row 4L + m from u[m], u[4 + m], u[8 + m], u[12 + m].
@inline(__always)
func transposed16(_ r: V16x16) -> V16x16 {
    @inline(__always) func quad(_ a: V, _ b: V, _ c: V, _ d: V) -> (V, V, V, V) {
        let t0 = unpackLo(a, b), t1 = unpackHi(a, b), t2 = unpackLo(c, d), t3 = unpackHi(c, d)
        return (unpackLoPairs(t0, t2), unpackHiPairs(t0, t2), unpackLoPairs(t1, t3), unpackHiPairs(t1, t3))
    }
    let g0 = quad(r.0, r.1, r.2, r.3), g1 = quad(r.4, r.5, r.6, r.7)
    let g2 = quad(r.8, r.9, r.10, r.11), g3 = quad(r.12, r.13, r.14, r.15)
    // Output rows m, 4 + m, 8 + m, 12 + m from u[m], u[4 + m], u[8 + m], u[12 + m].
    @inline(__always) func gather(_ a: V, _ b: V, _ c: V, _ d: V) -> (V, V, V, V) {
        let xa = evenQuads(a, b), xb = oddQuads(a, b), ya = evenQuads(c, d), yb = oddQuads(c, d)
        return (evenQuads(xa, ya), evenQuads(xb, yb), oddQuads(xa, ya), oddQuads(xb, yb))
    }
    let m0 = gather(g0.0, g1.0, g2.0, g3.0), m1 = gather(g0.1, g1.1, g2.1, g3.1)
    let m2 = gather(g0.2, g1.2, g2.2, g3.2), m3 = gather(g0.3, g1.3, g2.3, g3.3)
    return (m0.0, m1.0, m2.0, m3.0, m0.1, m1.1, m2.1, m3.1, m0.2, m1.2, m2.2, m3.2, m0.3, m1.3, m2.3, m3.3)
}

/// V = B^T d B for one tile: d = the 4 x 4 positions from `d` (rows `rowFloats` apart, positions
/// `lanes` apart), 16 channels per vector; V[xi] written at into + xi * xiStride.
@inline(__always)
func winogradInputTileChannelsLast(_ d: UnsafePointer<Float>, rowFloats: Int, lanes: Int,
                                   into: UnsafeMutablePointer<Float>, xiStride: Int) {
    for c0 in stride(from: 0, to: lanes, by: 16) {
        @inline(__always) func at(_ a: Int, _ b: Int) -> V { load(d + a * rowFloats + b * lanes + c0) }
        // B^T d, column b: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) of the column's rows; then
        // (B^T d) B: the same combinations of each row's columns, row a at xi = 4a ..< 4a + 4.
        @inline(__always) func column(_ b: Int) -> (V, V, V, V) {
            let d0 = at(0, b), d1 = at(1, b), d2 = at(2, b), d3 = at(3, b)
            return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
        }
        let k0 = column(0), k1 = column(1), k2 = column(2), k3 = column(3)
        @inline(__always) func row(_ a: Int, _ r0: V, _ r1: V, _ r2: V, _ r3: V) {
            let out = into + c0 + 4 * a * xiStride
            store(r0 - r2, out)
            store(r1 + r2, out + xiStride)
            store(r2 - r1, out + 2 * xiStride)
            store(r1 - r3, out + 3 * xiStride)
        }
        row(0, k0.0, k1.0, k2.0, k3.0)
        row(1, k0.1, k1.1, k2.1, k3.1)
        row(2, k0.2, k1.2, k2.2, k3.2)
        row(3, k0.3, k1.3, k2.3, k3.3)
    }
}

