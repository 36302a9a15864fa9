// The weight gradient of a 3x3 convolution with stride 1 and padding 1 by Winograd F(2x2, 3x3).
//
// The forward is Y_t = A^T [U (.) V_t] A per 2x2 output tile t, with U = G w G^T and
// V_t = B^T d_t B (Winograd.swift). Y is linear in U, so
//   dL/dU = sum over tiles t of Z_t (.) V_t,  Z_t = A dY_t A^T (4x4 from the 2x2 gradient tile),
//   dL/dw = G^T (dL/dU) G,
// and for each of the 16 positions xi, M[xi] (O x C) = sum_t Z_t[xi] (O) V_t[xi] (C)^T is a
// GEMM whose depth is the tiles: 16 multiply-adds per tile and channel pair instead of the
// direct kernel's 36.
//
// The transforms run with 16 channels per vector on channels-last copies of x and dY (made by
// 16 x 16 transposes in registers), so every lane is used whatever the image size, and they write
// V[xi][t][c] and Z[xi][t][o] with the channels contiguous: the rows the GEMM's rank-1 updates
// read. Tiles are taken in groups whose V and Z stay in L2; M accumulates over the groups.

/// gw[O, C, 3, 3] += the weight gradient of `images` consecutive images.
/// - x: [images, C, H, W]; gy: [images, O, H, W].
/// Scratch of its own (freed on return): channels-last copies of one image, V and Z of one group
/// of tiles, M (16 O C floats).
@inline(never)
public func convolutionWeightGradientWinograd3x3(_ s: ConvShape, x: UnsafePointer<Float>, gy: UnsafePointer<Float>,
                                                 gw: UnsafeMutablePointer<Float>, images: Int) {
    precondition(s.kernel == 3 && s.stride == 1 && s.padding == 1, "Winograd F(2x2, 3x3) is for 3x3, stride 1, padding 1")
    let (C, O, H, W) = (s.inChannels, s.outChannels, s.height, s.width)
    guard images > 0, H > 0, W > 0, C > 0, O > 0 else { return }
    let th = (H + 1) / 2, tw = (W + 1) / 2
    // Channels rounded up to whole vectors; the extra lanes are zero and their sums dropped.
    let cp = (C + 15) / 16 * 16, op = (O + 15) / 16 * 16
    // x with its zero border, (2 th + 2) x (2 tw + 2) positions; dY on 2 th x 2 tw (zero past H, W).
    let xRow = 2 * tw + 2, dRow = 2 * tw
    let xFloats = (2 * th + 2) * xRow * cp, dFloats = 2 * th * dRow * op
    // A group's V and Z: about 256 KB, at least 16 tiles.
    let group = max(16, (64 << 10) / (16 * (cp + op)))
    let xl = UnsafeMutablePointer<Float>.allocate(capacity: xFloats)
    let dl = UnsafeMutablePointer<Float>.allocate(capacity: dFloats)
    // The 16 xi planes of V and Z one cache line more than a group apart: at a multiple of 4 KB
    // the 16 stores of a tile would all fall in one L1 set.
    let vPlane = group * cp + 16, zPlane = group * op + 16
    let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * vPlane)
    let z = UnsafeMutablePointer<Float>.allocate(capacity: 16 * zPlane)
    let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * op * cp)
    defer { xl.deallocate(); dl.deallocate(); v.deallocate(); z.deallocate(); m.deallocate() }
    // The borders of xl and dl must be zero and M accumulates; V and Z are written (every lane,
    // channels past C and O as zeros) before the GEMM reads them, which reads only the group's
    // filled rows.
    xl.initialize(repeating: 0, count: xFloats)
    dl.initialize(repeating: 0, count: dFloats)
    m.initialize(repeating: 0, count: 16 * op * cp)

    let xEnd = x + images * C * H * W, gEnd = gy + images * O * H * W
    var filled = 0
    func flush() {
        winogradGradientProducts(tiles: filled, v: v, vPlane: vPlane, z: z, zPlane: zPlane, m: m, cp: cp, op: op)
        filled = 0
    }
    for n in 0..<images {
        transposeToChannelsLast(x + n * C * H * W, end: xEnd, channels: C, height: H, width: W,
                                into: xl + (xRow + 1) * cp, rowStride: xRow, lanes: cp)
        transposeToChannelsLast(gy + n * O * H * W, end: gEnd, channels: O, height: H, width: W,
                                into: dl, rowStride: dRow, lanes: op)
        for i in 0..<th {
            for j in 0..<tw {
                winogradInputTileChannelsLast(xl + (2 * i * xRow + 2 * j) * cp, rowFloats: xRow * cp,
                                              lanes: cp, into: v + filled * cp, xiStride: vPlane)
                winogradGradientTile(dl + (2 * i * dRow + 2 * j) * op, rowFloats: dRow * op,
                                     lanes: op, into: z + filled * op, xiStride: zPlane)
                filled += 1
                if filled == group { flush() }
            }
        }
    }
    if filled > 0 { flush() }
    winogradGradientToWeights(m, cp: cp, op: op, channels: C, outChannels: O, gw: gw)
}

/// Z = A dY A^T for one tile: dY = the 2 x 2 positions from `g`, 16 output channels per
/// vector; Z[xi] written at into + xi * xiStride. A's rows are (1, 0), (1, 1), (1, -1), (0, -1).
@inline(__always)
func winogradGradientTile(_ g: UnsafePointer<Float>, rowFloats: Int, lanes: Int,
                          into: UnsafeMutablePointer<Float>, xiStride: Int) {
    for o0 in stride(from: 0, to: lanes, by: 16) {
        let y00 = load(g + o0), y01 = load(g + lanes + o0)
        let y10 = load(g + rowFloats + o0), y11 = load(g + rowFloats + lanes + o0)
        // A dY: rows y0, y0 + y1, y0 - y1, -y1 (two columns each); then the same on the columns.
        @inline(__always) func row(_ a: Int, _ p0: V, _ p1: V) {
            let out = into + o0 + 4 * a * xiStride
            store(p0, out)
            store(p0 + p1, out + xiStride)
            store(p0 - p1, out + 2 * xiStride)
            store(-p1, out + 3 * xiStride)
        }
        row(0, y00, y01)
        row(1, y00 + y10, y01 + y11)
        row(2, y00 - y10, y01 - y11)
        row(3, -y10, -y11)
    }
}

/// M[xi] (op x cp) += Z[xi]^T V[xi] over the first `tiles` tiles of a group: rank-1 updates,
/// 16 output channels (broadcast) x 16 input channels (one vector) at a time.
@inline(never)
func winogradGradientProducts(tiles: Int, v: UnsafePointer<Float>, vPlane: Int, z: UnsafePointer<Float>, zPlane: Int,
                              m: UnsafeMutablePointer<Float>, cp: Int, op: Int) {
    for xi in 0..<16 {
        let vx = v + xi * vPlane, zx = z + xi * zPlane, mx = m + xi * op * cp
        for o0 in stride(from: 0, to: op, by: 16) {
            for c0 in stride(from: 0, to: cp, by: 16) {
                var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V(), a5 = V(), a6 = V(), a7 = V()
                var a8 = V(), a9 = V(), a10 = V(), a11 = V(), a12 = V(), a13 = V(), a14 = V(), a15 = V()
                var vp = vx + c0, zp = zx + o0
                for _ in 0..<tiles {
                    let b = load(vp)
                    a0.addProduct(V(repeating: zp[0]), b); a1.addProduct(V(repeating: zp[1]), b)
                    a2.addProduct(V(repeating: zp[2]), b); a3.addProduct(V(repeating: zp[3]), b)
                    a4.addProduct(V(repeating: zp[4]), b); a5.addProduct(V(repeating: zp[5]), b)
                    a6.addProduct(V(repeating: zp[6]), b); a7.addProduct(V(repeating: zp[7]), b)
                    a8.addProduct(V(repeating: zp[8]), b); a9.addProduct(V(repeating: zp[9]), b)
                    a10.addProduct(V(repeating: zp[10]), b); a11.addProduct(V(repeating: zp[11]), b)
                    a12.addProduct(V(repeating: zp[12]), b); a13.addProduct(V(repeating: zp[13]), b)
                    a14.addProduct(V(repeating: zp[14]), b); a15.addProduct(V(repeating: zp[15]), b)
                    vp += cp
                    zp += op
                }
                let out = mx + o0 * cp + c0
                @inline(__always) func add(_ r: Int, _ a: V) { store(load(out + r * cp) + a, out + r * cp) }
                add(0, a0); add(1, a1); add(2, a2); add(3, a3); add(4, a4); add(5, a5); add(6, a6); add(7, a7)
                add(8, a8); add(9, a9); add(10, a10); add(11, a11); add(12, a12); add(13, a13); add(14, a14); add(15, a15)
            }
        }
    }
}

/// gw[o, c] += G^T M[., o, c] G (4 x 4 -> 3 x 3), G's rows (1, 0, 0), (1/2, 1/2, 1/2),
/// (1/2, -1/2, 1/2), (0, 0, 1).
func winogradGradientToWeights(_ m: UnsafePointer<Float>, cp: Int, op: Int, channels: Int, outChannels: Int,
                               gw: UnsafeMutablePointer<Float>) {
    for o in 0..<outChannels {
        for c in 0..<channels {
            @inline(__always) func mm(_ a: Int, _ b: Int) -> Float { m[((4 * a + b) * op + o) * cp + c] }
            // G^T M (rows m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3 of M's rows),
            // then the same on the columns.
            @inline(__always) func combine(_ m0: Float, _ m1: Float, _ m2: Float, _ m3: Float) -> (Float, Float, Float) {
                (m0 + 0.5 * (m1 + m2), 0.5 * (m1 - m2), 0.5 * (m1 + m2) + m3)
            }
            let k0 = combine(mm(0, 0), mm(1, 0), mm(2, 0), mm(3, 0)), k1 = combine(mm(0, 1), mm(1, 1), mm(2, 1), mm(3, 1))
            let k2 = combine(mm(0, 2), mm(1, 2), mm(2, 2), mm(3, 2)), k3 = combine(mm(0, 3), mm(1, 3), mm(2, 3), mm(3, 3))
            let out = gw + (o * channels + c) * 9
            @inline(__always) func put(_ a: Int, _ r: (Float, Float, Float)) {
                out[3 * a] += r.0; out[3 * a + 1] += r.1; out[3 * a + 2] += r.2
            }
            put(0, combine(k0.0, k1.0, k2.0, k3.0))
            put(1, combine(k0.1, k1.1, k2.1, k3.1))
            put(2, combine(k0.2, k1.2, k2.2, k3.2))
        }
    }
}
