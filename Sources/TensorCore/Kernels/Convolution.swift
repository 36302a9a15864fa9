import CPUKernelsAVX512

/// Shapes of one 2-D convolution (square kernel, symmetric padding, NCHW / OIHW).
public struct ConvGeometry: Equatable, Sendable {
    public let batch, inChannels, height, width: Int
    public let outChannels, kernel, stride, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    public var patch: Int { inChannels * kernel * kernel }

    public init(input: [Int], weight: [Int], stride: Int, padding: Int) {
        precondition(input.count == 4, "conv2d input must be [N, C, H, W], got \(input)")
        precondition(weight.count == 4 && weight[2] == weight[3],
                     "conv2d weight must be [O, I, k, k], got \(weight)")
        precondition(input[1] == weight[1], "conv2d input has \(input[1]) channels, weight expects \(weight[1])")
        precondition(stride >= 1 && padding >= 0, "conv2d stride \(stride) / padding \(padding)")
        (batch, inChannels, height, width) = (input[0], input[1], input[2], input[3])
        (outChannels, kernel) = (weight[0], weight[2])
        (self.stride, self.padding) = (stride, padding)
        precondition(outHeight >= 1 && outWidth >= 1, "conv2d output would be empty for input \(input)")
    }

    /// Whether the AVX-512 path takes Winograd F(2x2, 3x3) (forward, input and weight gradients):
    /// 16 multiplications per 2x2 outputs instead of 36. Its transforms cost per channel, so with
    /// few input channels (a stem on 1 or 3) the direct kernel is faster (forward measured: 0.63x
    /// at C=1, 0.77x at C=3, 1.44x at C=16).
    var winogradApplies: Bool { kernel == 3 && stride == 1 && padding == 1 && inChannels >= 8 }

    var avx512Shape: ConvShape {
        ConvShape(inChannels: inChannels, height: height, width: width, outChannels: outChannels,
                  kernel: kernel, stride: stride, padding: padding)
    }

    /// Images per GEMM: enough output positions that BLAS gets a well-shaped matrix.
    var imagesPerGEMM: Int { Swift.max(1, 1024 / (outHeight * outWidth)) }
}

// MARK: - im2col / col2im

/// Output columns `ox` whose input column `ox * S - P + kj` lies inside 0..<W.
@inlinable
func validColumns(_ g: ConvGeometry, kj: Int) -> Range<Int> {
    let (S, P, W) = (g.stride, g.padding, g.width)
    let lo = Swift.max(0, (P - kj + S - 1) / S)
    let hi = Swift.min(g.outWidth, (W - 1 + P - kj) / S + 1)
    return lo..<Swift.max(lo, hi)
}

/// cols[patch, ldc] gets the patches of `images` consecutive images starting at `x`
/// (column s*HWout + p for image s, output position p).
@inlinable
func im2col(_ g: ConvGeometry, x: UnsafePointer<Float>, images: Int,
            cols: UnsafeMutablePointer<Float>, ldc: Int) {
    let (H, W, K, S, P) = (g.height, g.width, g.kernel, g.stride, g.padding)
    let (Ho, Wo) = (g.outHeight, g.outWidth)
    let hw = Ho * Wo
    for kj in 0..<K {
        // The padding columns are the same for every row: only the valid run is copied.
        let valid = validColumns(g, kj: kj)
        let x0 = valid.lowerBound * S - P + kj
        for s in 0..<images {
            for c in 0..<g.inChannels {
                let plane = x + (s * g.inChannels + c) * H * W
                for ki in 0..<K {
                    let row = cols + ((c * K + ki) * K + kj) * ldc + s * hw
                    for oy in 0..<Ho {
                        let iy = oy * S - P + ki
                        let dst = row + oy * Wo
                        // Rows are short (7 to 32 floats): plain loops beat memcpy/memset calls.
                        if iy < 0 || iy >= H || valid.isEmpty {
                            for i in 0..<Wo { dst[i] = 0 }
                            continue
                        }
                        for i in 0..<valid.lowerBound { dst[i] = 0 }
                        for i in valid.upperBound..<Wo { dst[i] = 0 }
                        let src = plane + iy * W + x0
                        let d = dst + valid.lowerBound
                        if S == 1 {
                            for i in 0..<valid.count { d[i] = src[i] }
                        } else {
                            for i in 0..<valid.count { d[i] = src[i * S] }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each column entry back into the image gradient `gx`.
@inlinable
func col2im(_ g: ConvGeometry, cols: UnsafePointer<Float>, ldc: Int, images: Int,
            gx: UnsafeMutablePointer<Float>) {
    let (H, W, K, S, P) = (g.height, g.width, g.kernel, g.stride, g.padding)
    let (Ho, Wo) = (g.outHeight, g.outWidth)
    let hw = Ho * Wo
    for kj in 0..<K {
        let valid = validColumns(g, kj: kj)
        if valid.isEmpty { continue }
        let x0 = valid.lowerBound * S - P + kj
        for s in 0..<images {
            for c in 0..<g.inChannels {
                let plane = gx + (s * g.inChannels + c) * H * W
                for ki in 0..<K {
                    let row = cols + ((c * K + ki) * K + kj) * ldc + s * hw
                    for oy in 0..<Ho {
                        let iy = oy * S - P + ki
                        if iy < 0 || iy >= H { continue }
                        let dst = plane + iy * W + x0
                        let src = row + oy * Wo + valid.lowerBound
                        if S == 1 {
                            for i in 0..<valid.count { dst[i] += src[i] }
                        } else {
                            for i in 0..<valid.count { dst[i * S] += src[i] }
                        }
                    }
                }
            }
        }
    }
}

/// Plain loops over every (image, channel, kernel tap, output position): the reference that
/// the fast im2col/GEMM path is tested against.
public func conv2dReference(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    let (xs, ws, bs) = (x.scalars, weight.scalars, bias?.scalars)
    var y = [Float](repeating: 0, count: g.batch * g.outChannels * g.outHeight * g.outWidth)
    for n in 0..<g.batch {
        for o in 0..<g.outChannels {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var acc = bs?[o] ?? 0
                    for c in 0..<g.inChannels {
                        for ki in 0..<g.kernel {
                            for kj in 0..<g.kernel {
                                let iy = oy * stride - padding + ki, ix = ox * stride - padding + kj
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                acc += xs[((n * g.inChannels + c) * g.height + iy) * g.width + ix]
                                    * ws[((o * g.inChannels + c) * g.kernel + ki) * g.kernel + kj]
                            }
                        }
                    }
                    y[((n * g.outChannels + o) * g.outHeight + oy) * g.outWidth + ox] = acc
                }
            }
        }
    }
    return Tensor(shape: [g.batch, g.outChannels, g.outHeight, g.outWidth], scalars: y)
}

// MARK: - Forward

/// y = conv2d(x, weight) + bias.
/// - x: [N, C, H, W]; weight: [O, C, k, k]; bias: [O] or nil. Returns [N, O, Ho, Wo].
public func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> Tensor {
    conv2dForward(x, weight: weight, stride: stride, padding: padding, epilogue: ConvEpilogue(bias: bias))
}

/// What a convolution does to its output before returning it, a few images at a time while
/// they are still in cache: y = y + bias[o] + residual, then max(y, 0) when `relu`. Inference
/// runs a ResNet block's BN (folded), shortcut addition and ReLU this way instead of three
/// passes over memory.
public struct ConvEpilogue {
    /// [O] or nil.
    public var bias: Tensor?
    /// The shape of the output, or nil.
    public var residual: Tensor?
    public var relu: Bool

    public init(bias: Tensor? = nil, residual: Tensor? = nil, relu: Bool = false) {
        (self.bias, self.residual, self.relu) = (bias, residual, relu)
    }

    var isEmpty: Bool { bias == nil && residual == nil && !relu }
}

/// A convolution's weights with what its kernels derive from them computed once, for weights
/// applied to many inputs (inference on chunks of a batch): Winograd's transformed weights,
/// where the AVX-512 Winograd path applies.
public struct PreparedConvolutionWeights {
    public let weight: Tensor
    public let stride: Int, padding: Int
    /// Flat `winogradTransformWeights` of `weight`, or nil.
    let winograd: Tensor?

    public init(_ weight: Tensor, stride: Int, padding: Int) {
        (self.weight, self.stride, self.padding) = (weight, stride, padding)
        precondition(weight.rank == 4, "conv2d weight must be [O, I, k, k], got \(weight.shape)")
        // The image size does not enter the transformed weights: any valid one will do.
        let g = ConvGeometry(input: [1, weight.shape[1], weight.shape[2], weight.shape[2]], weight: weight.shape,
                             stride: stride, padding: padding)
        guard Compute.convolutionKernels == .avx512 && g.winogradApplies else { winograd = nil; return }
        let shape = g.avx512Shape
        var u = Tensor(uninitializedShape: [winogradWeightFloats(shape)])
        weight.withUnsafeBufferPointer { w in
            u.withUnsafeMutableBufferPointer { winogradTransformWeights(shape, w: w.baseAddress!, into: $0.baseAddress!) }
        }
        winograd = u
    }
}

/// y = epilogue(conv2d(x, weights)) with prepared weights.
public func conv2dForward(_ x: Tensor, weights: PreparedConvolutionWeights, epilogue: ConvEpilogue) -> Tensor {
    conv2dForward(x, weight: weights.weight, stride: weights.stride, padding: weights.padding, epilogue: epilogue,
                  winogradWeights: weights.winograd)
}

/// y = epilogue(conv2d(x, weight)).
/// - x: [N, C, H, W]; weight: [O, C, k, k]. Returns [N, O, Ho, Wo].
public func conv2dForward(_ x: Tensor, weight: Tensor, stride: Int, padding: Int, epilogue: ConvEpilogue) -> Tensor {
    conv2dForward(x, weight: weight, stride: stride, padding: padding, epilogue: epilogue, winogradWeights: nil)
}

func conv2dForward(_ x: Tensor, weight: Tensor, stride: Int, padding: Int, epilogue: ConvEpilogue,
                   winogradWeights: Tensor?) -> Tensor {
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    let outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
    if let bias = epilogue.bias {
        precondition(bias.shape == [g.outChannels], "conv2d bias must be [\(g.outChannels)], got \(bias.shape)")
    }
    if let residual = epilogue.residual {
        precondition(residual.shape == outShape, "conv2d residual must be \(outShape), got \(residual.shape)")
    }
    let hw = g.outHeight * g.outWidth
    let (inImage, outImage) = (g.inChannels * g.height * g.width, g.outChannels * hw)
    var y = Tensor(uninitializedShape: outShape)
    let pieces = Compute.ranges(g.batch)
    withUnsafeEpilogue(epilogue) { finish in
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let (xBase, wBase, yBase) = (xp.baseAddress!, wp.baseAddress!, yp.baseAddress!)
                    if Compute.convolutionKernels == .avx512 {
                        let shape = g.avx512Shape
                        let winograd = g.winogradApplies
                        // Both kernels apply the epilogue as they store the output.
                        Compute.parallelFor(pieces.count) { piece in
                            let r = pieces[piece], n0 = r.lowerBound
                            let (xi, yo) = (xBase + n0 * inImage, yBase + n0 * outImage)
                            let e = finish.kernelEpilogue(image: n0, imageFloats: outImage)
                            if winograd {
                                if let winogradWeights {
                                    winogradWeights.withUnsafeBufferPointer { u in
                                        convolutionForwardWinograd3x3(shape, x: xi, w: wBase, y: yo, images: r.count, epilogue: e,
                                                                      transformedWeights: u.baseAddress!)
                                    }
                                } else {
                                    convolutionForwardWinograd3x3(shape, x: xi, w: wBase, y: yo, images: r.count, epilogue: e)
                                }
                            } else {
                                convolutionForwardDirectAVX512(shape, x: xi, w: wBase, y: yo, images: r.count, epilogue: e)
                            }
                        }
                        return
                    }
                    let per = Compute.sampleIndependent ? 1 : g.imagesPerGEMM
                    Compute.parallelFor(pieces.count) { piece in
                        let range = pieces[piece]
                        let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.patch * per * hw)
                        let out = UnsafeMutablePointer<Float>.allocate(capacity: g.outChannels * per * hw)
                        defer { cols.deallocate(); out.deallocate() }
                        var n0 = range.lowerBound
                        while n0 < range.upperBound {
                            let nb = Swift.min(per, range.upperBound - n0)
                            let ldc = nb * hw
                            im2col(g, x: xBase + n0 * inImage, images: nb, cols: cols, ldc: ldc)
                            // out[O, nb*hw] = W[O, patch] * cols[patch, nb*hw]; one image's output
                            // is already in NCHW order, so it goes straight into y.
                            let direct = nb == 1
                            sgemm(transA: false, transB: false, m: g.outChannels, n: ldc, k: g.patch,
                                  a: wBase, lda: g.patch, b: cols, ldb: ldc,
                                  c: direct ? yBase + n0 * outImage : out, ldc: ldc)
                            if !direct {
                                for s in 0..<nb {
                                    for o in 0..<g.outChannels {
                                        let dst = yBase + ((n0 + s) * g.outChannels + o) * hw
                                        dst.update(from: out + o * ldc + s * hw, count: hw)
                                    }
                                }
                            }
                            finish.apply(yBase, n0..<(n0 + nb), g.outChannels, hw)
                            n0 += nb
                        }
                    }
                }
            }
        }
    }
    return y
}

/// A `ConvEpilogue` as pointers, for the kernels (nil when there is nothing to do).
struct ResolvedEpilogue {
    let pointers: OutputEpilogue?

    /// The epilogue for a kernel call whose output starts at image `image`.
    func kernelEpilogue(image: Int, imageFloats: Int) -> OutputEpilogue? {
        guard var e = pointers else { return nil }
        e.residual = e.residual.map { $0 + image * imageFloats }
        return e
    }

    /// Applies the epilogue to images `range` of an [N, O, hw] output.
    func apply(_ y: UnsafeMutablePointer<Float>, _ range: Range<Int>, _ channels: Int, _ hw: Int) {
        guard let pointers else { return }
        applyConvEpilogue(y: y, images: range, channels: channels, hw: hw, pointers)
    }
}

/// Runs `body` with `e`'s tensors as pointers.
private func withUnsafeEpilogue(_ e: ConvEpilogue, _ body: (ResolvedEpilogue) -> Void) {
    func withOptional(_ t: Tensor?, _ f: (UnsafePointer<Float>?) -> Void) {
        if let t { t.withUnsafeBufferPointer { f($0.baseAddress!) } } else { f(nil) }
    }
    guard !e.isEmpty else { return body(ResolvedEpilogue(pointers: nil)) }
    withOptional(e.bias) { bias in
        withOptional(e.residual) { residual in
            body(ResolvedEpilogue(pointers: OutputEpilogue(bias: bias, residual: residual, relu: e.relu)))
        }
    }
}

/// y[n, o, :] = y + bias[o] + residual[n, o, :], then ReLU (`v > 0 ? v : 0`, as `relu`) when
/// asked, for n in `images`. - y, residual: [N, O, hw]; bias: [O].
@inline(never)
func applyConvEpilogue(y: UnsafeMutablePointer<Float>, images: Range<Int>, channels: Int, hw: Int,
                       _ e: OutputEpilogue) {
    let zero = Lanes(repeating: 0)
    for n in images {
        for o in 0..<channels {
            let off = (n * channels + o) * hw
            let dst = y + off
            let b = e.bias?[o] ?? 0
            let vb = Lanes(repeating: b)
            var i = 0
            if let residual = e.residual {
                let r = residual + off
                while i + 16 <= hw {
                    var v = loadLanes(dst + i) + vb + loadLanes(r + i)
                    if e.relu { v = zero.replacing(with: v, where: v .> zero) }
                    storeLanes(v, dst + i); i += 16
                }
                while i < hw { let v = dst[i] + b + r[i]; dst[i] = e.relu ? (v > 0 ? v : 0) : v; i += 1 }
            } else {
                while i + 16 <= hw {
                    var v = loadLanes(dst + i) + vb
                    if e.relu { v = zero.replacing(with: v, where: v .> zero) }
                    storeLanes(v, dst + i); i += 16
                }
                while i < hw { let v = dst[i] + b; dst[i] = e.relu ? (v > 0 ? v : 0) : v; i += 1 }
            }
        }
    }
}

// MARK: - Backward

/// Gradients of `conv2dForward` with respect to the requested inputs.
/// - gradOutput: [N, O, Ho, Wo]. Returns grad x [N, C, H, W], grad weight [O, C, k, k], grad bias [O].
public func conv2dBackward(_ x: Tensor, weight: Tensor, gradOutput: Tensor, stride: Int, padding: Int,
                           needInput: Bool, needWeight: Bool, needBias: Bool)
    -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
    let g = ConvGeometry(input: x.shape, weight: weight.shape, stride: stride, padding: padding)
    precondition(gradOutput.shape == [g.batch, g.outChannels, g.outHeight, g.outWidth],
                 "conv2d gradient shape \(gradOutput.shape) does not match output")
    let hw = g.outHeight * g.outWidth
    let per = Compute.sampleIndependent ? 1 : g.imagesPerGEMM
    let pieces = Compute.ranges(g.batch)
    // With stride 1 the input gradient is itself a convolution: gy with the kernel flipped and
    // its channel axes swapped, padding k-1-p. That GEMM has k*k*O inner products per output
    // instead of O, and needs no col2im scatter.
    let viaFlippedConvolution = needInput && g.stride == 1 && g.padding <= g.kernel - 1
    var gx = Tensor.zeros(needInput && !viaFlippedConvolution ? x.shape : [0])
    let computeInput = needInput && !viaFlippedConvolution
    // One partial weight gradient per thread, summed at the end (no shared writes).
    let wCount = weight.count
    let partialW = UnsafeMutablePointer<Float>.allocate(capacity: needWeight ? pieces.count * wCount : 1)
    defer { partialW.deallocate() }
    if needWeight { partialW.initialize(repeating: 0, count: pieces.count * wCount) }
    let weightByAVX512 = needWeight && Compute.convolutionKernels == .avx512
    if weightByAVX512 {
        let shape = g.avx512Shape
        let (inImage, outImage) = (g.inChannels * g.height * g.width, g.outChannels * hw)
        let winograd = g.winogradApplies
        x.withUnsafeBufferPointer { xp in
            gradOutput.withUnsafeBufferPointer { gyp in
                Compute.parallelFor(pieces.count) { piece in
                    let r = pieces[piece]
                    let (xi, gi) = (xp.baseAddress! + r.lowerBound * inImage, gyp.baseAddress! + r.lowerBound * outImage)
                    if winograd {
                        convolutionWeightGradientWinograd3x3(shape, x: xi, gy: gi, gw: partialW + piece * wCount, images: r.count)
                    } else {
                        convolutionWeightGradientDirectAVX512(shape, x: xi, gy: gi, gw: partialW + piece * wCount, images: r.count)
                    }
                }
            }
        }
    }
    let weightByBLAS = needWeight && !weightByAVX512
    x.withUnsafeBufferPointer { xp in
        weight.withUnsafeBufferPointer { wp in
            gradOutput.withUnsafeBufferPointer { gyp in
                gx.withUnsafeMutableBufferPointer { gxp in
                    Compute.parallelFor(weightByBLAS || computeInput ? pieces.count : 0) { piece in
                        let range = pieces[piece]
                        let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.patch * per * hw)
                        let gy = UnsafeMutablePointer<Float>.allocate(capacity: g.outChannels * per * hw)
                        defer { cols.deallocate(); gy.deallocate() }
                        var n0 = range.lowerBound
                        while n0 < range.upperBound {
                            let nb = Swift.min(per, range.upperBound - n0)
                            let ldc = nb * hw
                            // gy[O, nb*hw] gathered from the NCHW gradient (one image: used in place).
                            let gyBlock: UnsafePointer<Float>
                            if nb == 1 {
                                gyBlock = gyp.baseAddress! + n0 * g.outChannels * hw
                            } else {
                                for s in 0..<nb {
                                    for o in 0..<g.outChannels {
                                        (gy + o * ldc + s * hw).update(
                                            from: gyp.baseAddress! + ((n0 + s) * g.outChannels + o) * hw, count: hw)
                                    }
                                }
                                gyBlock = UnsafePointer(gy)
                            }
                            if weightByBLAS {
                                im2col(g, x: xp.baseAddress! + n0 * g.inChannels * g.height * g.width,
                                       images: nb, cols: cols, ldc: ldc)
                                // gW[O, patch] += gy[O, nb*hw] * cols[patch, nb*hw]^T
                                sgemm(transA: false, transB: true, m: g.outChannels, n: g.patch, k: ldc,
                                      a: gyBlock, lda: ldc, b: cols, ldb: ldc, beta: 1,
                                      c: partialW + piece * wCount, ldc: g.patch)
                            }
                            if computeInput {
                                // cols[patch, nb*hw] = W[O, patch]^T * gy[O, nb*hw]
                                sgemm(transA: true, transB: false, m: g.patch, n: ldc, k: g.outChannels,
                                      a: wp.baseAddress!, lda: g.patch, b: gyBlock, ldb: ldc, c: cols, ldc: ldc)
                                col2im(g, cols: cols, ldc: ldc, images: nb,
                                       gx: gxp.baseAddress! + n0 * g.inChannels * g.height * g.width)
                            }
                            n0 += nb
                        }
                    }
                }
            }
        }
    }
    var gw: Tensor? = nil
    if needWeight {
        var total = Tensor(uninitializedShape: weight.shape)
        total.withUnsafeMutableBufferPointer { t in
            t.baseAddress!.update(from: partialW, count: wCount)
            for piece in 1..<pieces.count {
                let src = partialW + piece * wCount
                for i in 0..<wCount { t[i] += src[i] }
            }
        }
        gw = total
    }
    if viaFlippedConvolution {
        gx = conv2dForward(gradOutput, weight: weight.flippedTransposedKernel(), bias: nil,
                           stride: 1, padding: g.kernel - 1 - g.padding)
    }
    let gb = needBias ? gradOutput.sumPerChannel() : nil
    return (needInput ? gx : nil, gw, gb)
}

extension Tensor {
    /// [O, C, k, k] -> [C, O, k, k] with each kernel rotated by 180 degrees.
    func flippedTransposedKernel() -> Tensor {
        let (o, c, k) = (shape[0], shape[1], shape[2])
        var out = Tensor(uninitializedShape: [c, o, k, k])
        withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { f in
                for oi in 0..<o {
                    for ci in 0..<c {
                        for i in 0..<k {
                            for j in 0..<k {
                                f[((ci * o + oi) * k + (k - 1 - i)) * k + (k - 1 - j)] = w[((oi * c + ci) * k + i) * k + j]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Per-image weight gradients

/// The weight gradient of each image on its own, for sums that must not depend on how the
/// batch is split (`SampleTree`): row n of `rows` receives image n's gradient [O, C, k, k].
/// - x: [N, C, H, W]; gradOutput: [N, O, Ho, Wo]; rows: N * O*C*k*k floats.
/// Each image runs on one thread, images in parallel, so the rows do not depend on the thread
/// count either.
public func conv2dWeightGradientPerImage(_ x: Tensor, weightShape: [Int], gradOutput: Tensor, stride: Int, padding: Int,
                                         into rows: UnsafeMutablePointer<Float>) {
    let g = ConvGeometry(input: x.shape, weight: weightShape, stride: stride, padding: padding)
    precondition(gradOutput.shape == [g.batch, g.outChannels, g.outHeight, g.outWidth],
                 "conv2d gradient shape \(gradOutput.shape) does not match output")
    let hw = g.outHeight * g.outWidth
    let wCount = g.outChannels * g.patch
    let (inImage, outImage) = (g.inChannels * g.height * g.width, g.outChannels * hw)
    rows.initialize(repeating: 0, count: g.batch * wCount)
    let byAVX512 = Compute.convolutionKernels == .avx512
    x.withUnsafeBufferPointer { xp in
        gradOutput.withUnsafeBufferPointer { gyp in
            Compute.parallelFor(g.batch) { n in
                let (xi, gi, gw) = (xp.baseAddress! + n * inImage, gyp.baseAddress! + n * outImage, rows + n * wCount)
                if byAVX512 {
                    convolutionWeightGradientDirectAVX512(g.avx512Shape, x: xi, gy: gi, gw: gw, images: 1)
                } else {
                    let cols = UnsafeMutablePointer<Float>.allocate(capacity: g.patch * hw)
                    defer { cols.deallocate() }
                    im2col(g, x: xi, images: 1, cols: cols, ldc: hw)
                    // gW[O, patch] = gy[O, hw] * cols[patch, hw]^T
                    sgemm(transA: false, transB: true, m: g.outChannels, n: g.patch, k: hw,
                          a: gi, lda: hw, b: cols, ldb: hw, c: gw, ldc: g.patch)
                }
            }
        }
    }
}
