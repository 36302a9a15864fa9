// Winograd transforms for narrow images: rows of at most 7 tiles (14x14 and 7x7 in ResNet-20),
// where the row-by-row transforms of Winograd.swift fill only 7 or 4 of a vector's 16 lanes.
//
// Input: each padded row's even and odd columns go into 8-float slots, the slots of even padded
// rows in one array and those of odd rows in another, so that one 16-lane load at slot r reads
// padded rows r and r + 2, the same column of two consecutive rows of tiles. A vector then holds
// two rows of tiles (lanes 0 ..< tw and 8 ..< 8 + tw), which halves the loads and arithmetic of
// the input transform; its two halves are written to the tiles' places in V.
// Output: M is dense over the block's tiles, so 16 consecutive tiles (two to four rows of tiles)
// are transformed per vector into a stage holding each tile's outputs at 2p, 2p + 1 of two
// rows u, in which a row of tiles is exactly output row 2i + u; rows are then copied into y with
// the epilogue.
//
// Columns: padded column k is input column k - 1; for tile j, e = E[j], o = O[j], f = E[j + 1],
// q = O[j + 1], with E[k] = x[2k - 1] and O[k] = x[2k] (zero outside the image).

/// Copies image [C, H, W] into its slot: for channel c, array (kind k: 0 = E, 1 = O; parity s)
/// at slot + (c * 4 + k * 2 + s) * slotArray, 8-float slot t of it = padded row 2t + s (input row
/// 2t + s - 1); rows past the image are zero. Each slot is written with a 16-lane store whose
/// upper lanes land in the next slot of its array, written after it. Needs tw <= 7.
@inline(never)
func winogradLoadSlots(_ plan: WinogradPlan, x: UnsafePointer<Float>, xStart: UnsafePointer<Float>,
                       xEnd: UnsafePointer<Float>, slot: UnsafeMutablePointer<Float>, masks: LaneMasks) {
    let (H, W, th, A) = (plan.H, plan.W, plan.th, plan.slotArray)
    precondition(plan.tw <= 7, "narrow-image Winograd needs rows of at most 7 tiles, got \(plan.tw)")
    // Valid lanes: E[k] = x[2k - 1] for 1 <= k <= W / 2, O[k] = x[2k] for k < (W + 1) / 2.
    let eMask = masks.atLeast(1) & ~masks.atLeast(W / 2 + 1)
    let oMask = ~masks.atLeast((W + 1) / 2)
    let zero = V()
    @inline(__always) func masked(_ v: V, _ m: SIMD16<UInt32>) -> V {
        unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & m, to: V.self)
    }
    // x[-1 ..< 31] from a row's start as even and odd lanes (lanes outside xStart ..< xEnd zero).
    @inline(__always) func evenOdd(_ p: UnsafePointer<Float>) -> (even: V, odd: V) {
        if p >= xStart && p + 32 <= xEnd { return deinterleave(load(p), load(p + 16)) }
        var a = V(), b = V()
        for k in 0..<16 where p + k >= xStart && p + k < xEnd { a[k] = p[k] }
        for k in 0..<16 where p + 16 + k >= xStart && p + 16 + k < xEnd { b[k] = p[16 + k] }
        return deinterleave(a, b)
    }
    for c in 0..<plan.C {
        let arrays = slot + c * 4 * A
        for r in 0..<(2 * th + 2) {
            let e = arrays + (r & 1) * A + (r >> 1) * 8, o = e + 2 * A
            let inputRow = r - 1
            guard inputRow >= 0 && inputRow < H else {
                store(zero, e); store(zero, o)
                continue
            }
            let row = evenOdd(x + (c * H + inputRow) * W - 1)
            store(masked(row.even, eMask), e)
            store(masked(row.odd, oMask), o)
        }
    }
}

/// 1. Input transform of a block, two rows of tiles of one image per vector: V[xi][c][16 + p].
/// The low half (row R) is written first with all 16 lanes, then the high half (row R + 1) as
/// 8 floats at R + 1's place, over the low write's upper lanes; later pairs overwrite what
/// spills past them, and nothing is written past the block's V row slack.
@inline(never)
func winogradInputTransformPaired(_ k: WinogradBlock) {
    let plan = k.plan
    let (C, th, tw, A) = (plan.C, plan.th, plan.tw, plan.slotArray)
    let (rowStride, vxi) = (plan.rowStride, plan.vPlane)
    for c in 0..<C {
        let dst = k.v + 16 + c * rowStride
        var R = k.firstRow
        while R <= k.lastRow {
            let n = R / th, i = R % th
            let paired = i + 1 < th && R + 1 <= k.lastRow
            let arrays = UnsafePointer(k.pad + (n % plan.slots) * plan.slotFloats + c * 4 * A)
            // Row a of the 4x4 tile: padded row 2i + a, slot i + a / 2 of the parity a % 2 arrays;
            // the next 8 floats are the same for row i + 1.
            let evenE = arrays + i * 8, oddE = arrays + A + i * 8
            let evenO = arrays + 2 * A + i * 8, oddO = arrays + 3 * A + i * 8
            let e0 = load(evenE), e1 = load(oddE), e2 = load(evenE + 8), e3 = load(oddE + 8)
            let f0 = load(evenE + 1), f1 = load(oddE + 1), f2 = load(evenE + 9), f3 = load(oddE + 9)
            let o0 = load(evenO), o1 = load(oddO), o2 = load(evenO + 8), o3 = load(oddO + 8)
            let q0 = load(evenO + 1), q1 = load(oddO + 1), q2 = load(evenO + 9), q3 = load(oddO + 9)
            let p = R * tw - k.b0
            // B^T d (rows), then (B^T d) B (columns), row a of V at xi = 4a ..< 4a + 4.
            @inline(__always) func put(_ d: UnsafeMutablePointer<Float>, _ e: V, _ f: V, _ o: V, _ q: V) {
                winogradInputColumns(d, vxi, e, f, o, q)
                if paired {
                    storeUpperHalf(e - f, d + tw)
                    storeUpperHalf(o + f, d + vxi + tw)
                    storeUpperHalf(f - o, d + 2 * vxi + tw)
                    storeUpperHalf(o - q, d + 3 * vxi + tw)
                }
            }
            let d = dst + p
            put(d, e0 - e2, f0 - f2, o0 - o2, q0 - q2)
            put(d + 4 * vxi, e1 + e2, f1 + f2, o1 + o2, q1 + q2)
            put(d + 8 * vxi, e2 - e1, f2 - f1, o2 - o1, q2 - q1)
            put(d + 12 * vxi, e1 - e3, f1 - f3, o1 - o3, q1 - q3)
            R += paired ? 2 : 1
        }
    }
}

/// Lanes 8 ..< 16 of v at p ..< p + 8.
@inline(__always)
private func storeUpperHalf(_ v: V, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: SIMD8(v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]),
                                          as: SIMD8<Float>.self)
}

/// 3. Output transform of a block for output channels 8 panel ..< 8 panel + 8: 16 consecutive
/// tiles per vector into the stage, then each output row copied into y with the epilogue
/// (+ bias, + residual, ReLU: the order of separate passes). Output rows are written in
/// increasing order within a plane, so a row's vector may spill into the plane's later rows
/// (written after it); at a plane's end only the valid lanes are written.
@inline(never)
func winogradOutputTransformStaged(_ k: WinogradBlock, panel: Int, y: UnsafeMutablePointer<Float>,
                                   yEnd: UnsafeMutablePointer<Float>, masks: LaneMasks, epilogue: OutputEpilogue?) {
    let plan = k.plan
    let (O, H, W, th, tw) = (plan.O, plan.H, plan.W, plan.th, plan.tw)
    let hw = H * W, mxi = plan.mPlane, count = k.count
    // Stage rows u = 0, 1: 2 floats per tile, 32 floats of slack for the last vector.
    let stage0 = k.stage, stage1 = k.stage + 2 * plan.rowStride
    // A flag and a plain pointer, not an optional tested in the loop (see winogradOutputTransform).
    let hasEpilogue = epilogue != nil, relu = epilogue?.relu ?? false
    let hasResidual = epilogue?.residual != nil, residualBase = epilogue?.residual ?? UnsafePointer(y)
    let yCount = yEnd - y, zero = V()
    for r in 0..<min(8, O - panel * 8) {
        let o = panel * 8 + r
        let mr = UnsafePointer(k.m + r * plan.rowStride + 16)
        var p = 0
        while p < count {
            let (row0, row1) = winogradOutputRows(mr + p, mxi)
            store(row0.low, stage0 + 2 * p)
            store(row0.high, stage0 + 2 * p + 16)
            store(row1.low, stage1 + 2 * p)
            store(row1.high, stage1 + 2 * p + 16)
            p += 16
        }
        let bias = V(repeating: epilogue?.bias?[o] ?? 0)
        for R in k.firstRow...k.lastRow {
            let n = R / th, i = R % th
            let plane = y + (n * O + o) * hw
            let pR = R * tw - k.b0
            for u in 0..<min(2, H - 2 * i) {
                // A row of at most 14 outputs: one vector.
                var v = load((u == 0 ? stage0 : stage1) + 2 * pR)
                let dst = plane + (2 * i + u) * W
                if hasEpilogue {
                    v += bias
                    if hasResidual {
                        let at = dst - y
                        v += loadGuarded(residualBase + at, available: yCount - at)
                    }
                    if relu { v = zero.replacing(with: v, where: v .> zero) }
                }
                if dst + 16 <= plane + hw {
                    store(v, dst)
                } else {
                    storeLanes(v, dst, from: 0, to: W, end: yEnd, masks: masks)
                }
            }
        }
    }
}
