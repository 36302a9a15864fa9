// Winograd F(2x2, 3x3) for 3x3 convolutions with stride 1 and padding 1 (Lavin & Gray, 2016).
// Compiled for AVX-512 like the rest of this module: call only after checking the processor.
//
// Each 2x2 output tile is computed from a 4x4 input tile d as Y = A^T [U (.) V] A, where
// U = G g G^T (per output and input channel) and V = B^T d B (per input channel and tile), so
// for each of the 16 positions xi of the 4x4 transformed tile, M[xi] = U[xi] (O x C) * V[xi]
// (C x tiles) is a GEMM: 16 multiplications per 4 outputs instead of 36.
//
// Tiles are numbered consecutively over the images (tile g = (n * th + i) * tw + j) and taken in
// blocks of about 128 (whole rows of tiles). For each block:
//  1. input transform: V[xi][c][t] for the block's tiles t, 16 tiles per vector (the tiles j of
//     one row of tiles), read from a zero-padded copy of the image whose rows are stored split
//     into even and odd columns, so that every load is contiguous;
//  2. for each 8-row panel of output channels and each xi: M[xi][8][t] by the register-tiled
//     micro-kernel (A = packed U[xi], B = V[xi] rows read in place);
//  3. output transform of the panel, 16 tiles per vector, written straight into y.
//
// Writes of 16 lanes may run past the valid data; the layouts and the order of the writes make
// every such spill land in slack or in a place written again later (see the comments below).
// Nothing is written outside y[0 ..< images * O * H * W] and the scratch; x is never read past
// its end. Scratch (one block per thread kept across calls, 64-byte aligned parts, see WinogradPlan): the transformed
// weights (16 * 8 * ceil(O / 8) * C floats), V (16 * (160 C + 16)), M (16 * (8 * 160 + 16)), and
// padded copies of 2 or more images ((2 ceil(H/2) + 2) * 2 (ceil(W/2) + 1) * C + 32 each). The
// pointers x, w and y need only Float alignment.

#if canImport(Glibc)
import Glibc
#endif

/// B operand rows at a fixed distance: row p at base + p * stride.
struct StridedRows: RowAddressing {
    let base: UnsafePointer<Float>
    let stride: Int
    @inline(__always) func row(_ p: Int) -> UnsafePointer<Float> { base + p * stride }
}

/// One scratch block per thread, kept across calls and grown when a call needs more. Allocating
/// the scratch anew in every call left holes between a training step's large activations in the
/// heap (which `Compute` keeps from returning memory to the system): the peak resident memory of
/// a ResNet-20 step rose by about 20 MB.
private final class ThreadScratch {
    var base: UnsafeMutableRawPointer?
    var bytes = 0

    deinit { base?.deallocate() }

    /// `count` floats, 64-byte aligned, valid until this thread's next call. Zero-filled when
    /// newly allocated; otherwise they hold finite values of earlier calls, which the caller
    /// overwrites or never uses (see `convolutionForwardWinograd3x3`).
    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let needed = max(1, count) * 4
        if needed > bytes {
            base?.deallocate()
            base = UnsafeMutableRawPointer.allocate(byteCount: needed, alignment: 64)
            bytes = needed
            base!.initializeMemory(as: Float.self, repeating: 0, count: needed / 4)
        }
        return base!.bindMemory(to: Float.self, capacity: max(1, count))
    }
}

private let threadScratchKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key) { raw in
        guard let raw else { return }
        Unmanaged<ThreadScratch>.fromOpaque(raw).release()
    }
    precondition(status == 0, "pthread_key_create failed (\(status))")
    return key
}()

/// This thread's scratch block.
private func threadScratch() -> ThreadScratch {
    if let raw = pthread_getspecific(threadScratchKey) {
        return Unmanaged<ThreadScratch>.fromOpaque(raw).takeUnretainedValue()
    }
    let scratch = ThreadScratch()
    pthread_setspecific(threadScratchKey, Unmanaged.passRetained(scratch).toOpaque())
    return scratch
}

/// Floats of the transformed weights of a Winograd convolution with this shape's channels (its
/// image size does not matter).
public func winogradWeightFloats(_ s: ConvShape) -> Int { WinogradPlan(s, images: 1).uCount }

/// The transformed weights that `convolutionForwardWinograd3x3` computes in every call, for a
/// caller that applies the same weights to many calls (inference on chunks of a batch).
/// - w: [O, C, 3, 3]; u: `winogradWeightFloats(s)` floats.
public func winogradTransformWeights(_ s: ConvShape, w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
    winogradTransformWeights(WinogradPlan(s, images: 1), w: w, u: u)
}

struct WinogradPlan {
    let C, O, H, W: Int
    let th, tw, tilesPerImage, totalTiles: Int
    let panels: Int
    let strips: Int, blockTiles: Int
    /// V rows: 16 floats of front slack, strips * 32 tiles, 16 floats of back slack.
    let rowStride: Int
    /// Padded image: (2 th + 2) rows, each tw + 1 even columns then tw + 1 odd columns.
    let half: Int, planeP: Int, slotFloats: Int, slots: Int
    let vPlane, mPlane: Int
    let uCount, vCount, mCount, padCount, stageCount: Int
    /// Rows of at most 7 tiles (14x14, 7x7) take the narrow-image transforms of
    /// WinogradNarrowImages.swift: two rows of tiles per vector on the input side, 16
    /// consecutive tiles per vector on the output side.
    let narrow: Bool
    /// Narrow images: floats of one of a channel's four slot arrays (see `winogradLoadSlots`).
    let slotArray: Int

    init(_ s: ConvShape, images: Int) {
        (C, O, H, W) = (s.inChannels, s.outChannels, s.height, s.width)
        th = (H + 1) / 2
        tw = (W + 1) / 2
        tilesPerImage = th * tw
        totalTiles = images * tilesPerImage
        panels = (O + 7) / 8
        // Blocks of whole rows of tiles, about 128 tiles (4 strips of 32 columns for the
        // micro-kernel; the columns past the block in the last strip are computed and dropped):
        // rows of tiles cut by a block's ends take slower, exact writes (only rows wider than 128
        // tiles are cut). Blocks of 32 or 64 tiles measured no faster at C = 16 ... 129.
        let rowsPerBlock = 128 / tw
        blockTiles = rowsPerBlock > 0 ? min(rowsPerBlock * tw, totalTiles) : min(128, totalTiles)
        let st = (blockTiles + 31) / 32
        strips = st
        rowStride = 32 * st + 32
        half = tw + 1
        planeP = (2 * th + 2) * 2 * half
        narrow = tw <= 7
        // th + 1 padded rows of each parity, one more slot read by a last unpaired row, and the
        // spill of the last row's 16-lane write.
        slotArray = (th + 2) * 8 + 16
        // 32 floats between slots take the zeros that whole-vector row writes spill (see
        // `winogradLoadImage`).
        slotFloats = (narrow ? C * 4 * slotArray : C * planeP) + 32
        // A block spans at most (blockTiles - 1) / T + 2 images.
        slots = max(1, min(images, (blockTiles - 1) / tilesPerImage + 2))
        uCount = 16 * panels * C * 8
        // The 16 xi planes are written together: an odd number of cache lines apart, they
        // fall in different L1 sets (a multiple of 4 KB would put them all in one).
        vPlane = C * rowStride + 16
        mPlane = 8 * rowStride + 16
        vCount = 16 * vPlane
        mCount = 16 * mPlane
        // Vector reads run up to 16 floats past a row's end.
        padCount = slots * slotFloats + 64
        // Narrow images: two output rows u of 2 floats per tile (`winogradOutputTransformStaged`).
        stageCount = narrow ? 2 * 2 * rowStride : 0
    }
}

/// U[xi][panel][c][r] = (G g G^T)[xi] for output channel panel * 8 + r (zero rows past O),
/// for the 8 output channels of a panel at a time.
@inline(never)
func winogradTransformWeights(_ plan: WinogradPlan, w: UnsafePointer<Float>, u: UnsafeMutablePointer<Float>) {
    typealias V8 = SIMD8<Float>
    let (C, O) = (plan.C, plan.O)
    let xiStride = plan.panels * C * 8
    for panel in 0..<plan.panels {
        let valid = min(8, O - panel * 8)
        for c in 0..<C {
            // g[k] = tap k (row k / 3, column k % 3) of the panel's 8 kernels for input channel c.
            let src = w + (panel * 8 * C + c) * 9
            @inline(__always) func tap(_ k: Int) -> V8 {
                var v = V8()
                for r in 0..<valid { v[r] = src[r * C * 9 + k] }
                return v
            }
            let g0 = tap(0), g1 = tap(1), g2 = tap(2), g3 = tap(3), g4 = tap(4), g5 = tap(5)
            let g6 = tap(6), g7 = tap(7), g8 = tap(8)
            // Gg (4 x 3): rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of the kernel's rows.
            let half = V8(repeating: 0.5)
            let dst = u + panel * C * 8 + c * 8
            winogradWeightRow(dst, xiStride, g0, g1, g2)
            winogradWeightRow(dst + 4 * xiStride, xiStride, half * (g0 + g3 + g6), half * (g1 + g4 + g7), half * (g2 + g5 + g8))
            winogradWeightRow(dst + 8 * xiStride, xiStride, half * (g0 - g3 + g6), half * (g1 - g4 + g7), half * (g2 - g5 + g8))
            winogradWeightRow(dst + 12 * xiStride, xiStride, g6, g7, g8)
        }
    }
}

/// Row a of (Gg) G^T from row a (b0, b1, b2) of Gg, to xi = 4a ..< 4a + 4.
@inline(__always)
private func winogradWeightRow(_ row: UnsafeMutablePointer<Float>, _ xiStride: Int,
                               _ b0: SIMD8<Float>, _ b1: SIMD8<Float>, _ b2: SIMD8<Float>) {
    let half = SIMD8<Float>(repeating: 0.5)
    UnsafeMutableRawPointer(row).storeBytes(of: b0, as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(row + xiStride).storeBytes(of: half * (b0 + b1 + b2), as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(row + 2 * xiStride).storeBytes(of: half * (b0 - b1 + b2), as: SIMD8<Float>.self)
    UnsafeMutableRawPointer(row + 3 * xiStride).storeBytes(of: b2, as: SIMD8<Float>.self)
}

/// Lane masks: `ones + 16 - a` holds, as 16 lanes, all bits set in lanes k >= a (0 <= a <= 16).
struct LaneMasks {
    let ones: UnsafeMutablePointer<UInt32>

    init() {
        ones = .allocate(capacity: 48)
        for i in 0..<48 { ones[i] = i < 16 ? 0 : ~0 }
    }

    @inline(__always) func atLeast(_ a: Int) -> SIMD16<UInt32> {
        UnsafeRawPointer(ones + 16 - a).loadUnaligned(as: SIMD16<UInt32>.self)
    }

    func deallocate() { ones.deallocate() }
}

/// dst[k] = v[k] for k in from..<to (clamped to 0..<16). A partial vector is written by a masked
/// store (load, blend, store back: the other lanes keep their values, so this is safe anywhere
/// this single thread owns), or lane by lane when its 16 floats would pass `end`.
@inline(__always)
func storeLanes(_ v: V, _ dst: UnsafeMutablePointer<Float>, from: Int, to: Int,
                       end: UnsafeMutablePointer<Float>, masks: LaneMasks) {
    let a = max(0, from), b = min(16, to)
    if a >= b { return }
    if a == 0 && b == 16 {
        store(v, dst)
    } else if dst + 16 <= end {
        let mask = masks.atLeast(a) & ~masks.atLeast(b)
        let old = unsafeBitCast(load(dst), to: SIMD16<UInt32>.self)
        let new = unsafeBitCast(v, to: SIMD16<UInt32>.self)
        store(unsafeBitCast((old & ~mask) | (new & mask), to: V.self), dst)
    } else {
        for k in a..<b { dst[k] = v[k] }
    }
}

/// Copies image [C, H, W] into a padded slot: padded row r + 1 holds input row r, split into
/// even padded columns E[k] = x[2k - 1] and odd ones O[k] = x[2k]. The border stays zero.
/// Rows of at most 30 columns are written as two whole vectors (E[1...16] then O[0..<16]) whose
/// lanes past the row are zero: what they spill over lies further on (the O half, the next rows,
/// the next channels, then the gap after the slot) and is either padding, which must be zero, or
/// written afterwards. `xEnd`: where x's memory ends (vector reads stop before it).
@inline(__always)
private func winogradLoadImage(_ plan: WinogradPlan, x: UnsafePointer<Float>, xEnd: UnsafePointer<Float>,
                               slot: UnsafeMutablePointer<Float>, masks: LaneMasks) {
    let (H, W, half) = (plan.H, plan.W, plan.half)
    let vectorRows = half <= 16
    let oddMask = ~masks.atLeast(W / 2), evenMask = ~masks.atLeast((W + 1) / 2)
    for c in 0..<plan.C {
        for r in 0..<H {
            let src = x + (c * H + r) * W
            let e = slot + c * plan.planeP + (r + 1) * 2 * half, od = e + half
            if vectorRows && src + 32 <= xEnd {
                let row = deinterleave(load(src), load(src + 16))
                let odd = unsafeBitCast(row.odd, to: SIMD16<UInt32>.self) & oddMask
                let even = unsafeBitCast(row.even, to: SIMD16<UInt32>.self) & evenMask
                store(unsafeBitCast(odd, to: V.self), e + 1)
                store(unsafeBitCast(even, to: V.self), od)
                continue
            }
            var k = 0
            while 2 * k + 1 < W {
                od[k] = src[2 * k]
                e[k + 1] = src[2 * k + 1]
                k += 1
            }
            if 2 * k < W { od[k] = src[2 * k] }
        }
    }
}

/// One block of tiles [b0, b0 + count): where the scratch buffers are and how they are laid out.
struct WinogradBlock {
    let plan: WinogradPlan
    let pad, v, m, stage: UnsafeMutablePointer<Float>
    let b0, count: Int
    var firstRow: Int { b0 / plan.tw }
    var lastRow: Int { (b0 + count - 1) / plan.tw }
}

/// 1. Input transform of a block: V[xi][c][16 + t] for its tiles t. Each (xi, c) row of V is
/// written in increasing tile order, so the lanes past a row of tiles (garbage) are overwritten
/// by the next row of tiles, or land in the row's slack or in tiles past the block (whose
/// results are never used).
@inline(never)
func winogradInputTransform(_ k: WinogradBlock) {
    let plan = k.plan
    let (C, th, tw) = (plan.C, plan.th, plan.tw)
    let (rowStride, vxi, half, planeP) = (plan.rowStride, plan.vPlane, plan.half, plan.planeP)
    let rs = 2 * half
    // Channel by channel, so that each row of V is written from start to end in one go.
    for c in 0..<C {
        let dst = k.v + 16 + c * rowStride
        for R in k.firstRow...k.lastRow {
            let n = R / th, i = R % th
            let rows = UnsafePointer(k.pad + (n % plan.slots) * plan.slotFloats + c * planeP + 2 * i * rs)
            var j0 = 0
            while j0 < tw {
                let p = R * tw + j0 - k.b0
                if p + min(16, tw - j0) > 0 && p < k.count {
                    // Padded rows 2i ..< 2i + 4 at tiles j0 ..< j0 + 16: e = column 2j - 1,
                    // o = 2j, f = 2j + 1, q = 2j + 2.
                    let ep = rows + j0, op = ep + half
                    let e0 = load(ep), e1 = load(ep + rs), e2 = load(ep + 2 * rs), e3 = load(ep + 3 * rs)
                    let f0 = load(ep + 1), f1 = load(ep + rs + 1), f2 = load(ep + 2 * rs + 1), f3 = load(ep + 3 * rs + 1)
                    let o0 = load(op), o1 = load(op + rs), o2 = load(op + 2 * rs), o3 = load(op + 3 * rs)
                    let q0 = load(op + 1), q1 = load(op + rs + 1), q2 = load(op + 2 * rs + 1), q3 = load(op + 3 * rs + 1)
                    let d = dst + p
                    // B^T d (rows), then (B^T d) B (columns), row a of V at xi = 4a ..< 4a + 4.
                    winogradInputColumns(d, vxi, e0 - e2, f0 - f2, o0 - o2, q0 - q2)
                    winogradInputColumns(d + 4 * vxi, vxi, e1 + e2, f1 + f2, o1 + o2, q1 + q2)
                    winogradInputColumns(d + 8 * vxi, vxi, e2 - e1, f2 - f1, o2 - o1, q2 - q1)
                    winogradInputColumns(d + 12 * vxi, vxi, e1 - e3, f1 - f3, o1 - o3, q1 - q3)
                }
                j0 += 16
            }
        }
    }
}

@inline(__always)
func winogradInputColumns(_ r: UnsafeMutablePointer<Float>, _ vxi: Int, _ e: V, _ f: V, _ o: V, _ q: V) {
    store(e - f, r)
    store(o + f, r + vxi)
    store(f - o, r + 2 * vxi)
    store(o - q, r + 3 * vxi)
}

/// 3. Output transform of a block for output channels 8 panel ..< 8 panel + 8, from M[xi][r][16 + t],
/// 16 tiles (32 output columns) at a time. Output rows are written in increasing order within a
/// plane, so a write of 32 floats may spill past its row's end into later rows of the same plane:
/// they are written after it. Spills are allowed only where that holds: not on the first of the
/// two output rows of a row of tiles wider than 16 tiles (its other vectors come later), not in a
/// row of tiles that starts in an earlier block (its second output row begins with tiles already
/// written), and not past the plane. Elsewhere only the valid columns are written.
@inline(never)
func winogradOutputTransform(_ k: WinogradBlock, panel: Int, y: UnsafeMutablePointer<Float>,
                             yEnd: UnsafeMutablePointer<Float>, masks: LaneMasks, epilogue: OutputEpilogue?) {
    let plan = k.plan
    let (O, H, W, th, tw) = (plan.O, plan.H, plan.W, plan.th, plan.tw)
    let hw = H * W, mxi = plan.mPlane, count = k.count
    // A flag and a plain pointer rather than an optional tested in the loop, which LLVM turns
    // into masked loads from address 0 (very slow here); without a residual the pointer is y,
    // never read.
    let hasEpilogue = epilogue != nil, relu = epilogue?.relu ?? false
    let hasResidual = epilogue?.residual != nil, residualBase = epilogue?.residual ?? UnsafePointer(y)
    let yCount = yEnd - y, zero = V()
    for r in 0..<min(8, O - panel * 8) {
        let o = panel * 8 + r
        let mr = UnsafePointer(k.m + r * plan.rowStride + 16)
        let bias = V(repeating: epilogue?.bias?[o] ?? 0)
        for R in k.firstRow...k.lastRow {
            let n = R / th, i = R % th
            let plane = y + (n * O + o) * hw
            let startsHere = R * tw >= k.b0
            let outputRows = min(2, H - 2 * i)
            var j0 = 0
            while j0 < tw {
                let p = R * tw + j0 - k.b0
                let lanes = min(16, tw - j0)
                let la = max(0, -p), lb = min(lanes, count - p)
                if lb > la {
                    let rows = winogradOutputRows(mr + p, mxi)
                    for u in 0..<outputRows {
                        var (lo, hi) = u == 0 ? rows.0 : rows.1
                        let off = (2 * i + u) * W + 2 * j0
                        let dst = plane + off
                        if hasEpilogue {
                            // Same order as separate passes: + bias, + residual, ReLU. Lanes past
                            // the row's end are garbage that later writes replace.
                            lo += bias
                            hi += bias
                            if hasResidual {
                                let at = dst - y, rp = residualBase + at, available = yCount - at
                                if available >= 32 {
                                    lo += load(rp)
                                    hi += load(rp + 16)
                                } else {
                                    lo += loadGuarded(rp, available: available)
                                    hi += loadGuarded(rp + 16, available: available - 16)
                                }
                            }
                            if relu {
                                lo = zero.replacing(with: lo, where: lo .> zero)
                                hi = zero.replacing(with: hi, where: hi .> zero)
                            }
                        }
                        if startsHere && (u == 1 || tw <= 16) && lb == lanes && off + 32 <= hw {
                            store(lo, dst)
                            store(hi, dst + 16)
                        } else {
                            let c0 = 2 * la, c1 = min(2 * lb, W - 2 * j0)
                            storeLanes(lo, dst, from: c0, to: c1, end: yEnd, masks: masks)
                            storeLanes(hi, dst + 16, from: c0 - 16, to: c1 - 16, end: yEnd, masks: masks)
                        }
                    }
                }
                j0 += 16
            }
        }
    }
}

/// Y = A^T M A for 16 tiles: M[xi] at mp + xi * mxi (16 tiles each); returns output rows u = 0
/// and 1 as 32 floats each (tile t's two outputs at 2t, 2t + 1), in two vectors.
@inline(__always)
func winogradOutputRows(_ mp: UnsafePointer<Float>, _ mxi: Int) -> ((low: V, high: V), (low: V, high: V)) {
    let m0 = load(mp), m1 = load(mp + mxi), m2 = load(mp + 2 * mxi), m3 = load(mp + 3 * mxi)
    let m4 = load(mp + 4 * mxi), m5 = load(mp + 5 * mxi), m6 = load(mp + 6 * mxi), m7 = load(mp + 7 * mxi)
    let m8 = load(mp + 8 * mxi), m9 = load(mp + 9 * mxi), m10 = load(mp + 10 * mxi), m11 = load(mp + 11 * mxi)
    let m12 = load(mp + 12 * mxi), m13 = load(mp + 13 * mxi), m14 = load(mp + 14 * mxi), m15 = load(mp + 15 * mxi)
    // T = A^T M (rows t and s), then Y = T A.
    let t0 = m0 + m4 + m8, t1 = m1 + m5 + m9, t2 = m2 + m6 + m10, t3 = m3 + m7 + m11
    let s0 = m4 - m8 - m12, s1 = m5 - m9 - m13, s2 = m6 - m10 - m14, s3 = m7 - m11 - m15
    return (interleave(t0 + t1 + t2, t1 - t2 - t3), interleave(s0 + s1 + s2, s1 - s2 - s3))
}

/// y = epilogue(conv(x, w)) for a 3x3 kernel, stride 1, padding 1, by Winograd F(2x2, 3x3), for
/// `images` consecutive images; the epilogue (bias, residual, ReLU) is applied as each output
/// vector is stored. `transformedWeights`: `winogradTransformWeights` of w, computed here if nil.
/// - x: [images, C, H, W]; w: [O, C, 3, 3]; y: [images, O, H, W].
@inline(never)
public func convolutionForwardWinograd3x3(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                          y: UnsafeMutablePointer<Float>, images: Int, epilogue: OutputEpilogue? = nil,
                                          transformedWeights: UnsafePointer<Float>? = nil) {
    precondition(s.kernel == 3 && s.stride == 1 && s.padding == 1, "Winograd F(2x2, 3x3) is for 3x3, stride 1, padding 1")
    guard images > 0, s.height > 0, s.width > 0, s.outChannels > 0 else { return }
    let plan = WinogradPlan(s, images: images)
    let C = plan.C
    // One zero-filled block of this thread's scratch, each part starting on a 64-byte boundary.
    func rounded(_ n: Int) -> Int { (max(1, n) + 15) / 16 * 16 }
    let block = threadScratch().floats(rounded(plan.uCount) + rounded(plan.vCount) + rounded(plan.mCount)
                                       + rounded(plan.padCount) + rounded(plan.stageCount))
    let u = block
    let v = u + rounded(plan.uCount)
    let m = v + rounded(plan.vCount)
    let pad = m + rounded(plan.mCount)
    let stage = pad + rounded(plan.padCount)
    // The padded images' borders must be zero, and an earlier call may have left data of
    // another layout there. U is written whole; V and M are written wherever a kept output
    // reads them (the columns past a block are computed from leftovers and dropped).
    // (The narrow-image loader writes every padded row, zeros included.)
    if !plan.narrow { pad.update(repeating: 0, count: plan.padCount) }
    let masks = LaneMasks()
    defer { masks.deallocate() }

    let weights: UnsafePointer<Float>
    if let transformedWeights {
        weights = transformedWeights
    } else {
        winogradTransformWeights(plan, w: w, u: u)
        weights = UnsafePointer(u)
    }
    let xiStrideU = plan.panels * C * 8
    let (rowStride, vxi, mxi) = (plan.rowStride, plan.vPlane, plan.mPlane)
    let imageIn = C * plan.H * plan.W
    let yEnd = y + images * plan.O * plan.H * plan.W
    var loaded = 0
    var b0 = 0
    while b0 < plan.totalTiles {
        let count = min(plan.blockTiles, plan.totalTiles - b0)
        // Padded copies of the images this block reads.
        let lastImage = (b0 + count - 1) / plan.tilesPerImage
        while loaded <= lastImage {
            let slot = pad + (loaded % plan.slots) * plan.slotFloats
            if plan.narrow {
                winogradLoadSlots(plan, x: x + loaded * imageIn, xStart: x, xEnd: x + images * imageIn, slot: slot, masks: masks)
            } else {
                winogradLoadImage(plan, x: x + loaded * imageIn, xEnd: x + images * imageIn, slot: slot, masks: masks)
            }
            loaded += 1
        }
        let block = WinogradBlock(plan: plan, pad: pad, v: v, m: m, stage: stage, b0: b0, count: count)
        if plan.narrow { winogradInputTransformPaired(block) } else { winogradInputTransform(block) }
        let strips = (count + 31) / 32
        for panel in 0..<plan.panels {
            // 2. M[xi] (8 x tiles) = U[xi] (8 x C) V[xi] (C x tiles) for this panel.
            for xi in 0..<16 {
                let a = weights + xi * xiStrideU + panel * C * 8
                for strip in 0..<strips {
                    microKernel(depth: C, a: a, rowsOf: StridedRows(base: v + xi * vxi + 16 + strip * 32, stride: rowStride),
                                c: m + xi * mxi + 16 + strip * 32, ldc: rowStride, rows: 8, columns: 32, accumulate: false)
                }
            }
            if plan.narrow {
                winogradOutputTransformStaged(block, panel: panel, y: y, yEnd: yEnd, masks: masks, epilogue: epilogue)
            } else {
                winogradOutputTransform(block, panel: panel, y: y, yEnd: yEnd, masks: masks, epilogue: epilogue)
            }
        }
        b0 += count
    }
}
