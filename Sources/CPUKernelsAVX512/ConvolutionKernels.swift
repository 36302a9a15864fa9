/// The shape of one convolution, as `TensorCore.ConvGeometry` (this module sits below it).
public struct ConvShape {
    public var inChannels, height, width, outChannels, kernel, stride, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var patch: Int { inChannels * kernel * kernel }

    public init(inChannels: Int, height: Int, width: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int) {
        (self.inChannels, self.height, self.width, self.outChannels) = (inChannels, height, width, outChannels)
        (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
    }
}

/// Packs rows [r0, r0+8) of a row-major [rows, depth] matrix as depth x 8 (zero-padded rows).
@inline(__always)
func packRows(_ m: UnsafePointer<Float>, ld: Int, rows: Int, r0: Int, depth: Int, into out: UnsafeMutablePointer<Float>) {
    let valid = min(8, rows - r0)
    for p in 0..<depth {
        let dst = out + p * 8
        for r in 0..<valid { dst[r] = m[(r0 + r) * ld + p] }
        for r in valid..<8 { dst[r] = 0 }
    }
}

/// Implicit im2col: for output columns [v0, v0+columns) of consecutive images (column
/// v = image * HW + position), writes the patch values as depth x 32 rows, row (c, ki, kj),
/// zero where the kernel reads padding (and in the columns past `columns`).
///
/// The strip is cut into runs that stay on one output row: within a run the input columns
/// advance by the stride, so each (c, ki, kj) row is a short copy between two zero-filled ends.
@inline(__always)
func packPatches(_ s: ConvShape, x: UnsafePointer<Float>, v0: Int, columns: Int,
                 into out: UnsafeMutablePointer<Float>, runs: UnsafeMutablePointer<Int>) {
    let (Wo, hw) = (s.outWidth, s.outHeight * s.outWidth)
    let (K, H, W, S, P) = (s.kernel, s.height, s.width, s.stride, s.padding)
    let plane = H * W
    // runs[5 i ...]: image offset in x, first input row (oy*S-P), first output column, length,
    // first strip column.
    var count = 0
    var v = v0, t = 0
    while t < columns {
        let image = v / hw, pos = v % hw
        let oy = pos / Wo, ox = pos % Wo
        let len = min(Wo - ox, columns - t)
        let r = runs + 5 * count
        r[0] = image * s.inChannels * plane; r[1] = oy * S - P; r[2] = ox; r[3] = len; r[4] = t
        count += 1
        v += len; t += len
    }
    var row = 0
    for c in 0..<s.inChannels {
        for ki in 0..<K {
            for kj in 0..<K {
                let dst = out + row * 32
                // Output columns whose input column ox*S-P+kj falls inside 0..<W.
                let lo = max(0, (P - kj + S - 1) / S), hi = min(Wo, (W - 1 + P - kj) / S + 1)
                for i in 0..<count {
                    let r = runs + 5 * i
                    let (iy, ox0, len, t0) = (r[1] + ki, r[2], r[3], r[4])
                    let d = dst + t0
                    if iy < 0 || iy >= H {
                        for j in 0..<len { d[j] = 0 }
                        continue
                    }
                    let a = max(lo, ox0), b = max(a, min(hi, ox0 + len))
                    for j in 0..<(a - ox0) { d[j] = 0 }
                    for j in (b - ox0)..<len { d[j] = 0 }
                    let src = x + r[0] + c * plane + iy * W - P + kj
                    if S == 1 {
                        for ox in a..<b { d[ox - ox0] = src[ox] }
                    } else {
                        for ox in a..<b { d[ox - ox0] = src[ox * S] }
                    }
                }
                for j in columns..<32 { dst[j] = 0 }
                row += 1
            }
        }
    }
}

/// gw += sum over positions of gy[o, position] * patch(position) (the weight gradient), for
/// `images` consecutive images. - gy: [images, O, Ho, Wo]; gw: [O, C, k, k].
@inline(never)
public func convolutionWeightGradientAVX512(_ s: ConvShape, x: UnsafePointer<Float>, gy: UnsafePointer<Float>,
                                            gw: UnsafeMutablePointer<Float>, images: Int) {
    let patch = s.patch, hw = s.outHeight * s.outWidth, total = images * hw
    let panels = (s.outChannels + 7) / 8
    let block = 256
    let strips = (patch + 31) / 32
    let aPacked = UnsafeMutablePointer<Float>.allocate(capacity: panels * block * 8)
    let bPacked = UnsafeMutablePointer<Float>.allocate(capacity: strips * block * 32)
    let patches = UnsafeMutablePointer<Float>.allocate(capacity: patch * 32)
    let runs = UnsafeMutablePointer<Int>.allocate(capacity: 5 * 32)
    defer { aPacked.deallocate(); bPacked.deallocate(); patches.deallocate(); runs.deallocate() }
    var k0 = 0
    while k0 < total {
        let depth = min(block, total - k0)
        // A = gy as [O, positions]: depth x 8 panels.
        for panel in 0..<panels {
            let dst = aPacked + panel * depth * 8
            let r0 = panel * 8, valid = min(8, s.outChannels - r0)
            for p in 0..<depth {
                let v = k0 + p, im = v / hw, pos = v % hw
                let src = gy + (im * s.outChannels + r0) * hw + pos
                for r in 0..<valid { dst[p * 8 + r] = src[r * hw] }
                for r in valid..<8 { dst[p * 8 + r] = 0 }
            }
        }
        // B = patches^T, one depth x 32 panel per strip of 32 patch indices. The patches of 32
        // positions are packed once by the forward packer and transposed into every strip.
        var p0 = 0
        while p0 < depth {
            let n = min(32, depth - p0)
            packPatches(s, x: x, v0: k0 + p0, columns: n, into: patches, runs: runs)
            for strip in 0..<strips {
                let j0 = strip * 32, columns = min(32, patch - j0)
                let dst = bPacked + strip * depth * 32 + p0 * 32
                for q in 0..<n {
                    let row = dst + q * 32
                    for t in 0..<columns { row[t] = patches[(j0 + t) * 32 + q] }
                    for t in columns..<32 { row[t] = 0 }
                }
            }
            p0 += n
        }
        for strip in 0..<strips {
            let j0 = strip * 32, columns = min(32, patch - j0)
            for panel in 0..<panels {
                let r0 = panel * 8
                microKernel(depth: depth, a: aPacked + panel * depth * 8, b: bPacked + strip * depth * 32,
                            c: gw + r0 * patch + j0, ldc: patch,
                            rows: min(8, s.outChannels - r0), columns: columns, accumulate: true)
            }
        }
        k0 += depth
    }
}
