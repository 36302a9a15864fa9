import TensorCore

// Integer kernels of the exported model. Operands are centred levels (q - zero point), which fit
// Int16 for up to 15 bits (-255...255 for 8); products and sums are Int32. Dot products run
// over contiguous Int16 runs, the form that compiles to SSE2's pmaddwd on the baseline x86-64
// target (eight 16-bit multiplies summed pairwise into 32 bits), so the kernels need no
// processor-specific code.

/// cols[p, k] = centred input level of patch element k at output position p (0 in padding: the
/// level of the value 0), for one image of centred levels [C, H, W]. k runs over (channel,
/// kernel row, kernel column), the order of an OIHW weight's rows.
func im2colCentred(_ g: ConvGeometry, input: UnsafePointer<Int16>, cols: UnsafeMutablePointer<Int16>) {
    let (H, W, K, S, P) = (g.height, g.width, g.kernel, g.stride, g.padding)
    let patch = g.patch
    for oy in 0..<g.outHeight {
        for ox in 0..<g.outWidth {
            let row = cols + (oy * g.outWidth + ox) * patch
            var k = 0
            for c in 0..<g.inChannels {
                let plane = input + c * H * W
                for ki in 0..<K {
                    let iy = oy * S - P + ki
                    for kj in 0..<K {
                        let ix = ox * S - P + kj
                        row[k] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[iy * W + ix] : 0
                        k += 1
                    }
                }
            }
        }
    }
}

/// Sum of a[i] * b[i] over `count` elements, accumulated in Int32.
@inline(__always)
func dotInt16(_ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, count: Int) -> Int32 {
    var s: Int32 = 0
    for i in 0..<count { s &+= Int32(a[i]) &* Int32(b[i]) }
    return s
}

/// The integer convolution of a batch of levels: for image n, channel o, position p,
/// acc = bias[o] + sum_k weights[o, k] * cols_n[p, k], then out = acc * outputScale[o].
/// - input: [N, C, H, W] centred levels; weights: [O, patch] centred levels.
/// Returns float [N, O, Ho, Wo]. Images are split over the kernel threads.
func integerConvolution(_ g: ConvGeometry, input: [Int16], weights: [Int16],
                        bias: [Int32], outputScale: [Float]) -> Tensor {
    let (O, patch, positions) = (g.outChannels, g.patch, g.outHeight * g.outWidth)
    precondition(input.count == g.batch * g.inChannels * g.height * g.width && weights.count == O * patch,
                 "integer convolution: \(input.count) input levels, \(weights.count) weights for \(g)")
    var out = Tensor(uninitializedShape: [g.batch, O, g.outHeight, g.outWidth])
    let pieces = Compute.ranges(g.batch)
    let imageSize = g.inChannels * g.height * g.width
    out.withUnsafeMutableBufferPointer { o in
        input.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                guard let out0 = o.baseAddress, let x0 = x.baseAddress, let w0 = w.baseAddress else { return }
                Compute.parallelFor(pieces.count) { piece in
                    let cols = UnsafeMutablePointer<Int16>.allocate(capacity: positions * patch)
                    defer { cols.deallocate() }
                    for n in pieces[piece] {
                        im2colCentred(g, input: x0 + n * imageSize, cols: cols)
                        let y = out0 + n * O * positions
                        for ch in 0..<O {
                            let (row, b, s) = (w0 + ch * patch, bias[ch], outputScale[ch])
                            for p in 0..<positions {
                                y[ch * positions + p] = Float(b &+ dotInt16(row, cols + p * patch, count: patch)) * s
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}
