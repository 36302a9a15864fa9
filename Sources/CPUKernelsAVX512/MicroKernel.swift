// Compiled for AVX-512 (`-target-cpu skylake-avx512`, see Package.swift). Nothing here may run
// unless `TensorCore` has checked the processor; every entry point is non-inlinable so that no
// AVX-512 code is inlined into a module built for the baseline.

/// Rows and columns of one register tile: 8 x 32 floats in 16 zmm accumulators.
public let tileRows = 8
public let tileColumns = 32

typealias V = SIMD16<Float>

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

@inline(__always)
func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

/// Where row p of the B operand starts: rows read in place from a padded image (row p at
/// offsets[p]: the implicit im2col of a convolution) or at a fixed distance (Winograd's V).
protocol RowAddressing {
    func row(_ p: Int) -> UnsafePointer<Float>
}

struct OffsetRows: RowAddressing {
    let base: UnsafePointer<Float>
    let offsets: UnsafePointer<Int>
    @inline(__always) func row(_ p: Int) -> UnsafePointer<Float> { base + offsets[p] }
}

/// tile[r, t] (+)= sum over p < depth of a[p * 8 + r] * B[p, t], written to c[r * ldc + t]
/// for r < rows, t < columns. `a` is a packed panel (see `packRows`), B is addressed by `bRows`.
@inline(__always)
func microKernel<B: RowAddressing>(depth: Int, a: UnsafePointer<Float>, rowsOf bRows: B,
                                   c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int, accumulate: Bool) {
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
    var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
    var ap = a
    for p in 0..<depth {
        let bp = bRows.row(p)
        let b0 = load(bp), b1 = load(bp + 16)
        var s = V(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
        s = V(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
        s = V(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
        s = V(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
        s = V(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
        s = V(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
        s = V(repeating: ap[6]); c60.addProduct(s, b0); c61.addProduct(s, b1)
        s = V(repeating: ap[7]); c70.addProduct(s, b0); c71.addProduct(s, b1)
        ap += 8
    }
    let full = rows == 8 && columns == 32
    @inline(__always) func emit(_ r: Int, _ lo: V, _ hi: V) {
        guard r < rows else { return }
        let dst = c + r * ldc
        if full {
            if accumulate {
                store(load(dst) + lo, dst)
                store(load(dst + 16) + hi, dst + 16)
            } else {
                store(lo, dst)
                store(hi, dst + 16)
            }
            return
        }
        // Edge tile: only the valid part is written.
        for t in 0..<columns {
            let v = t < 16 ? lo[t] : hi[t - 16]
            dst[t] = accumulate ? dst[t] + v : v
        }
    }
    emit(0, c00, c01); emit(1, c10, c11); emit(2, c20, c21); emit(3, c30, c31)
    emit(4, c40, c41); emit(5, c50, c51); emit(6, c60, c61); emit(7, c70, c71)
}

extension SIMD16 where Scalar == Float {
    @inline(__always)
    mutating func addProduct(_ a: Self, _ b: Self) { self = addingProduct(a, b) }
}

/// What a convolution kernel does to each output value as it stores it: y = y + bias[o] +
/// residual (laid out as y), then ReLU (`v > 0 ? v : 0`) when `relu`. The order of the additions
/// is that of separate passes, so the values equal theirs.
public struct OutputEpilogue {
    public var bias: UnsafePointer<Float>?
    public var residual: UnsafePointer<Float>?
    public var relu: Bool

    public init(bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool) {
        (self.bias, self.residual, self.relu) = (bias, residual, relu)
    }
}

/// 16 floats from p, of which only the first `available` are read (the rest are zero).
@inline(__always)
func loadGuarded(_ p: UnsafePointer<Float>, available: Int) -> V {
    if available >= 16 { return load(p) }
    var v = V()
    for k in 0..<max(0, available) { v[k] = p[k] }
    return v
}

// Lane shuffles written lane by lane: LLVM turns each into one two-source permute (vpermt2ps).
// The standard library's SIMD32 evenHalf / oddHalf accessors were not inlined here: they ran as
// calls, 5-9 % of a Winograd inference.

/// The even and the odd lanes of the 32 lanes a, b.
@inline(__always)
func deinterleave(_ a: V, _ b: V) -> (even: V, odd: V) {
    (V(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14]),
     V(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15]))
}

/// a[0], b[0], a[1], b[1], ... as 32 lanes: the inverse of `deinterleave`.
@inline(__always)
func interleave(_ a: V, _ b: V) -> (low: V, high: V) {
    (V(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7]),
     V(a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14], b[14], a[15], b[15]))
}
