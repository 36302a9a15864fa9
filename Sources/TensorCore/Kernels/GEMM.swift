import CBLAS

/// C[m, n] = alpha * op(A) * op(B) + beta * C, row-major, through OpenBLAS.
/// - a: [m, k] (or [k, m] when `transA`), lda its row stride; likewise b, c.
@inlinable
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The plain triple loop that `sgemm` must agree with (tests compare the two).
public func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                           a: [Float], b: [Float]) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let av = transA ? a[p * m + i] : a[i * k + p]
                let bv = transB ? b[j * k + p] : b[p * n + j]
                s += av * bv
            }
            c[i * n + j] = s
        }
    }
    return c
}

extension Tensor {
    /// Matrix product of 2-D tensors: [m, k] x [k, n] -> [m, n] (with optional transposes).
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs 2-D tensors, got \(shape) and \(other.shape)")
        let (m, k) = transposeSelf ? (shape[1], shape[0]) : (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        precondition(k == k2, "matmul inner dimensions differ: \(shape) x \(other.shape)")
        var out = Tensor(uninitializedShape: [m, n])
        let rowByRow = Compute.sampleIndependent && !transposeSelf && m > 1
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    if rowByRow {
                        // Row i of the product from row i of self alone (sample-independent).
                        let pieces = Compute.ranges(m)
                        Compute.parallelFor(pieces.count) { piece in
                            for i in pieces[piece] {
                                sgemm(transA: false, transB: transposeOther, m: 1, n: n, k: k,
                                      a: a.baseAddress! + i * shape[1], lda: shape[1], b: b.baseAddress!, ldb: other.shape[1],
                                      c: c.baseAddress! + i * n, ldc: n)
                            }
                        }
                        return
                    }
                    sgemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                          a: a.baseAddress!, lda: shape[1], b: b.baseAddress!, ldb: other.shape[1],
                          c: c.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }
}
