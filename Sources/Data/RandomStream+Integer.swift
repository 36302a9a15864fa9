import TensorCore

extension RandomStream {
    /// Uniform integer in 0..<n by multiply-shift (bias below n / 2^32).
    ///
    /// Used instead of `int(below:)`, whose body `UInt64(w) * UInt64(n) >> 32` parses as
    /// `w * (n >> 32)` (in Swift `>>` binds tighter than `*`) and so always returns 0.
    mutating func integer(below n: Int) -> Int {
        precondition(n > 0 && n <= Int(UInt32.max), "integer(below: \(n))")
        return Int((UInt64(nextWord()) * UInt64(n)) >> 32)
    }
}
