/// Convolutions without im2col. The image is copied once into a zero-padded buffer split into
/// stride x stride phases: phase (a, b) holds the padded rows r with r % S == a and columns
/// with c % S == b, each phase plane of hp x wp (the padded size divided by S). Input
/// (S oy + ki, S ox + kj) of output (oy, ox) is then at row oy + ki / S, column ox + kj / S of
/// phase (ki % S, kj % S): on the grid of row length wp, the patch row (c, ki, kj) of output
/// q = oy wp + ox is the input at q + offset(c, ki, kj), whatever the stride. So the GEMM's B
/// rows are read in place at fixed offsets. The grid has wp - Wo columns past each output row;
/// they are computed and dropped (forward) or weighted by zero (weight gradient). With stride 1
/// there is one phase: the padded image itself.
struct PaddedImage {
    let shape: ConvShape
    /// Rows and columns of one phase plane (the padded image's with stride 1).
    let hp: Int, wp: Int, plane: Int
    /// Floats of one phase (all channels).
    let phaseFloats: Int
    /// Output positions on the grid: Ho rows of wp.
    let gridLength: Int
    let buffer: UnsafeMutablePointer<Float>
    let capacity: Int
    let offsets: UnsafeMutablePointer<Int>

    init(_ s: ConvShape, extra: Int) {
        shape = s
        let S = s.stride
        hp = (s.height + 2 * s.padding + S - 1) / S
        wp = PaddedImage.rowLength(s)
        plane = hp * wp
        phaseFloats = s.inChannels * plane
        gridLength = s.outHeight * wp
        // Reads run up to `extra` past the grid and K past the last row.
        capacity = S * S * phaseFloats + extra + s.kernel + 32
        buffer = .allocate(capacity: capacity)
        buffer.initialize(repeating: 0, count: capacity)
        offsets = .allocate(capacity: s.patch)
        var p = 0
        for c in 0..<s.inChannels {
            for ki in 0..<s.kernel {
                for kj in 0..<s.kernel {
                    offsets[p] = ((ki % S) * S + kj % S) * phaseFloats + c * plane + (ki / S) * wp + kj / S
                    p += 1
                }
            }
        }
    }

    /// The grid's row length: a phase plane's columns.
    static func rowLength(_ s: ConvShape) -> Int { (s.width + 2 * s.padding + s.stride - 1) / s.stride }

    /// Copies one image [C, H, W] into the interior (the border stays zero).
    func load(_ x: UnsafePointer<Float>) { load(x, into: buffer) }

    /// Copies one image [C, H, W] into the interior of `buffer`, a zero-filled buffer of this
    /// layout (`capacity` floats; the border stays zero).
    func load(_ x: UnsafePointer<Float>, into buffer: UnsafeMutablePointer<Float>) {
        let (H, W, P, S) = (shape.height, shape.width, shape.padding, shape.stride)
        for c in 0..<shape.inChannels {
            for i in 0..<H {
                let src = x + (c * H + i) * W
                let r = i + P
                if S == 1 {
                    let dst = buffer + c * plane + r * wp + P
                    for j in 0..<W { dst[j] = src[j] }
                    continue
                }
                let row = buffer + (r % S) * S * phaseFloats + c * plane + (r / S) * wp
                // Phase column b takes the input columns j with (j + P) % S == b, from j0 on.
                for b in 0..<S {
                    let j0 = ((b - P) % S + S) % S
                    let dst = row + b * phaseFloats + (j0 + P) / S
                    var (j, m) = (j0, 0)
                    while j < W { dst[m] = src[j]; j += S; m += 1 }
                }
            }
        }
    }

    func deallocate() { buffer.deallocate(); offsets.deallocate() }
}

/// y = epilogue(conv(x, w)) for `images` consecutive images, any stride (no im2col: see
/// `PaddedImage`); the epilogue (bias, residual, ReLU) is applied as each output tile is stored.
/// - x: [images, C, H, W]; w: [O, C, k, k]; y: [images, O, Ho, Wo].
@inline(never)
public func convolutionForwardDirectAVX512(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                           y: UnsafeMutablePointer<Float>, images: Int, epilogue: OutputEpilogue? = nil) {
    let depth = s.patch, (Ho, Wo) = (s.outHeight, s.outWidth), hw = Ho * Wo
    let panels = (s.outChannels + 7) / 8
    let image = PaddedImage(s, extra: 32)
    let aPacked = UnsafeMutablePointer<Float>.allocate(capacity: panels * depth * 8)
    // One 8 x 32 tile per panel: all panels are computed before any is copied out, so the
    // vector reads of a tile do not wait on the micro-kernel's stores still in flight (a read
    // that straddles two pending stores is not forwarded and stalls).
    // + 16: the epilogue's last vector of a row may read past the last tile.
    let tiles = UnsafeMutablePointer<Float>.allocate(capacity: panels * 8 * 32 + 16)
    tiles.initialize(repeating: 0, count: panels * 8 * 32 + 16)
    defer { image.deallocate(); aPacked.deallocate(); tiles.deallocate() }
    for panel in 0..<panels {
        packRows(w, ld: depth, rows: s.outChannels, r0: panel * 8, depth: depth, into: aPacked + panel * depth * 8)
    }
    let bias = epilogue?.bias, relu = epilogue?.relu ?? false
    // Without a residual the pointer is y itself, never read.
    let hasResidual = epilogue?.residual != nil, residualBase = epilogue?.residual ?? UnsafePointer(y)
    let wp = image.wp
    for n in 0..<images {
        image.load(x + n * s.inChannels * s.height * s.width)
        var q0 = 0
        while q0 < image.gridLength {
            let columns = min(32, image.gridLength - q0)
            let rows = OffsetRows(base: image.buffer + q0, offsets: image.offsets)
            for panel in 0..<panels {
                microKernel(depth: depth, a: aPacked + panel * depth * 8, rowsOf: rows, c: tiles + panel * 256, ldc: 32,
                            rows: min(8, s.outChannels - panel * 8), columns: columns, accumulate: false)
            }
            for panel in 0..<panels {
                let r0 = panel * 8, count = min(8, s.outChannels - r0), tile = tiles + panel * 256
                // Keep the grid columns that are output columns.
                var t = 0
                var (oy, ox) = (q0 / wp, q0 % wp)
                while t < columns {
                    let run = min(wp - ox, columns - t)
                    let keep = max(0, min(run, Wo - ox))
                    if keep > 0 {
                        for r in 0..<count {
                            let plane = (n * s.outChannels + r0 + r) * hw
                            let at = plane + oy * Wo + ox
                            // A whole vector may spill past the run into this plane's later rows
                            // (written after it), not past the plane.
                            storeWithEpilogue(tile + r * 32 + t, y + at, count: keep, room: plane + hw - at,
                                              hasEpilogue: epilogue != nil, bias: bias?[r0 + r] ?? 0,
                                              residual: residualBase + at, hasResidual: hasResidual, relu: relu)
                        }
                    }
                    t += run
                    oy += 1
                    ox = 0
                }
            }
            q0 += columns
        }
    }
}

/// gw += the weight gradient of a convolution (any stride) over `images` consecutive images.
/// - x: [images, C, H, W]; gy: [images, O, Ho, Wo]; gw: [O, C, k, k].
/// gw[o, p] = sum over images and grid positions q of gy[o, q] * x_padded[q + offset(p)] (the
/// layout of `PaddedImage`, whose grid has row length wp; gy is laid out on that grid with
/// zeros past each output row): dot products along q, 4 output channels x 6 patch rows at a
/// time, 16 positions per vector. All images of a group are laid out first so that each tile's
/// sums stay in registers across the images.
@inline(never)
public func convolutionWeightGradientDirectAVX512(_ s: ConvShape, x: UnsafePointer<Float>, gy: UnsafePointer<Float>,
                                                  gw: UnsafeMutablePointer<Float>, images: Int) {
    guard images > 0 else { return }
    let (O, Ho, Wo) = (s.outChannels, s.outHeight, s.outWidth)
    let hw = Ho * Wo
    let wp = PaddedImage.rowLength(s)
    let length = (Ho * wp + 15) / 16 * 16
    let layout = PaddedImage(s, extra: length - Ho * wp + 16)
    let stride = layout.capacity
    // Images are taken in groups whose padded inputs and gradient grids stay in the core's L2
    // cache while every tile streams over them; each tile's sums stay in registers across a
    // group and are reduced once per group.
    let bytesPerImage = (stride + O * length) * MemoryLayout<Float>.stride
    let group = max(1, min(images, (384 << 10) / bytesPerImage))
    let padded = UnsafeMutablePointer<Float>.allocate(capacity: group * stride)
    let grid = UnsafeMutablePointer<Float>.allocate(capacity: group * O * length)
    padded.initialize(repeating: 0, count: group * stride)
    grid.initialize(repeating: 0, count: group * O * length)
    defer { layout.deallocate(); padded.deallocate(); grid.deallocate() }
    var first = 0
    while first < images {
        let count = min(group, images - first)
        for k in 0..<count {
            let n = first + k
            layout.load(x + n * s.inChannels * s.height * s.width, into: padded + k * stride)
            let g = gy + n * O * hw, d = grid + k * O * length
            for o in 0..<O {
                for oy in 0..<Ho {
                    let a = g + o * hw + oy * Wo, b = d + o * length + oy * wp
                    for j in 0..<Wo { b[j] = a[j] }
                }
            }
        }
        weightGradientTiles(s, padded: padded, stride: stride, grid: grid, length: length,
                            offsets: layout.offsets, images: count, gw: gw)
        first += count
    }
}

/// gw += the tile sums over `images` laid-out images (see the caller). Tiles of 4 output
/// channels x 6 patch rows: 24 accumulators, 6 + 4 loads per 24 multiply-adds (the loads come
/// from L2, whose bandwidth bounds this kernel; 4 x 4 tiles needed 8 per 16).
@inline(__always)
func weightGradientTiles(_ s: ConvShape, padded: UnsafeMutablePointer<Float>, stride: Int,
                         grid: UnsafeMutablePointer<Float>, length: Int, offsets: UnsafeMutablePointer<Int>,
                         images: Int, gw: UnsafeMutablePointer<Float>) {
    let (O, patch) = (s.outChannels, s.patch)
    var o0 = 0
    while o0 < O {
        let oc = min(4, O - o0)
        let r0 = min(o0, O - 1) * length, r1 = min(o0 + 1, O - 1) * length
        let r2 = min(o0 + 2, O - 1) * length, r3 = min(o0 + 3, O - 1) * length
        var p0 = 0
        while p0 < patch {
            let pc = min(6, patch - p0)
            let f0 = offsets[p0], f1 = offsets[min(p0 + 1, patch - 1)], f2 = offsets[min(p0 + 2, patch - 1)]
            let f3 = offsets[min(p0 + 3, patch - 1)], f4 = offsets[min(p0 + 4, patch - 1)], f5 = offsets[min(p0 + 5, patch - 1)]
            var a00 = V(), a01 = V(), a02 = V(), a03 = V(), a04 = V(), a05 = V()
            var a10 = V(), a11 = V(), a12 = V(), a13 = V(), a14 = V(), a15 = V()
            var a20 = V(), a21 = V(), a22 = V(), a23 = V(), a24 = V(), a25 = V()
            var a30 = V(), a31 = V(), a32 = V(), a33 = V(), a34 = V(), a35 = V()
            for n in 0..<images {
                let xi = UnsafePointer(padded + n * stride), gi = UnsafePointer(grid + n * O * length)
                let x0 = xi + f0, x1 = xi + f1, x2 = xi + f2, x3 = xi + f3, x4 = xi + f4, x5 = xi + f5
                let g0 = gi + r0, g1 = gi + r1, g2 = gi + r2, g3 = gi + r3
                var q = 0
                while q < length {
                    let v0 = load(x0 + q), v1 = load(x1 + q), v2 = load(x2 + q)
                    let v3 = load(x3 + q), v4 = load(x4 + q), v5 = load(x5 + q)
                    var u = load(g0 + q)
                    a00.addProduct(u, v0); a01.addProduct(u, v1); a02.addProduct(u, v2)
                    a03.addProduct(u, v3); a04.addProduct(u, v4); a05.addProduct(u, v5)
                    u = load(g1 + q)
                    a10.addProduct(u, v0); a11.addProduct(u, v1); a12.addProduct(u, v2)
                    a13.addProduct(u, v3); a14.addProduct(u, v4); a15.addProduct(u, v5)
                    u = load(g2 + q)
                    a20.addProduct(u, v0); a21.addProduct(u, v1); a22.addProduct(u, v2)
                    a23.addProduct(u, v3); a24.addProduct(u, v4); a25.addProduct(u, v5)
                    u = load(g3 + q)
                    a30.addProduct(u, v0); a31.addProduct(u, v1); a32.addProduct(u, v2)
                    a33.addProduct(u, v3); a34.addProduct(u, v4); a35.addProduct(u, v5)
                    q += 16
                }
            }
            @inline(__always) func put(_ i: Int, _ j: Int, _ v: V) {
                if i < oc && j < pc { gw[(o0 + i) * patch + p0 + j] += v.sum() }
            }
            put(0, 0, a00); put(0, 1, a01); put(0, 2, a02); put(0, 3, a03); put(0, 4, a04); put(0, 5, a05)
            put(1, 0, a10); put(1, 1, a11); put(1, 2, a12); put(1, 3, a13); put(1, 4, a14); put(1, 5, a15)
            put(2, 0, a20); put(2, 1, a21); put(2, 2, a22); put(2, 3, a23); put(2, 4, a24); put(2, 5, a25)
            put(3, 0, a30); put(3, 1, a31); put(3, 2, a32); put(3, 3, a33); put(3, 4, a34); put(3, 5, a35)
            p0 += 6
        }
        o0 += 4
    }
}

/// dst[j] = src[j], or with `hasEpilogue` src[j] + bias + residual[j] (the residual read only
/// when `hasResidual`), then ReLU when `relu` (the order of separate passes), for j < count; the
/// last vector may write up to `room` floats. The flags are separate arguments
/// so that the loops test no optional: LLVM if-converts such a test into masked loads from
/// address 0, which this processor serves very slowly.
@inline(__always)
func storeWithEpilogue(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, room: Int,
                       hasEpilogue: Bool, bias: Float, residual: UnsafePointer<Float>, hasResidual: Bool, relu: Bool) {
    let vb = V(repeating: bias), zero = V()
    @inline(__always) func finish(_ x: V, _ j: Int) -> V {
        guard hasEpilogue else { return x }
        var v = x + vb
        if hasResidual { v += load(residual + j) }
        if relu { v = zero.replacing(with: v, where: v .> zero) }
        return v
    }
    var j = 0
    while j + 16 <= count {
        store(finish(load(src + j), j), dst + j)
        j += 16
    }
    // The rest of a short run (rows of 7 or 14 outputs) as one vector where that may spill:
    // `room` floats from dst may be written (and read, for the residual); src has 16 floats of
    // slack past its data.
    if j < count && j + 16 <= room {
        store(finish(load(src + j), j), dst + j)
        return
    }
    while j < count {
        var v = src[j]
        if hasEpilogue {
            v += bias
            if hasResidual { v += residual[j] }
            if relu { v = v > 0 ? v : 0 }
        }
        dst[j] = v
        j += 1
    }
}
