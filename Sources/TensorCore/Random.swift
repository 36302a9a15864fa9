/// Philox4x32-10, a counter-based generator (Salmon et al., SC'11): the numbers for
/// (key, counter) are a pure function of the two, so any rank can draw the values of any global
/// sample without drawing the ones before it.
public struct Philox: Sendable {
    public let key: (UInt32, UInt32)

    public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// Four 32-bit random words for a 128-bit counter.
    @inlinable
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        var (x0, x1, x2, x3) = (c0, c1, c2, c3)
        var (k0, k1) = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(x0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(x2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (x0, x1, x2, x3) = (hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0)
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return (x0, x1, x2, x3)
    }
}

/// A stream of random numbers addressed by (purpose, step, index): the i-th value of sample
/// `index` at `step` for `purpose` never depends on how many other values were drawn.
public struct RandomStream: Sendable {
    public let philox: Philox
    public let purpose: UInt32
    public let step: UInt32
    public let index: UInt32
    private var position: UInt32 = 0
    private var buffer: [UInt32] = []

    public init(seed: UInt64, purpose: UInt32, step: Int, index: Int) {
        philox = Philox(seed: seed)
        self.purpose = purpose
        self.step = UInt32(truncatingIfNeeded: step)
        self.index = UInt32(truncatingIfNeeded: index)
    }

    public mutating func nextWord() -> UInt32 {
        if buffer.isEmpty {
            let b = philox.block(position, index, step, purpose)
            position &+= 1
            buffer = [b.3, b.2, b.1, b.0]
        }
        return buffer.removeLast()
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(nextWord() >> 8) * (1.0 / 16_777_216.0) }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below: \(n))")
        return Int((UInt64(nextWord()) * UInt64(n)) >> 32)
    }

    /// Standard normal by Box-Muller (one value per call; the pair's second half is dropped so
    /// that the count of draws per value is fixed).
    public mutating func normal() -> Float {
        let u1 = Swift.max(Float(nextWord() >> 8) + 1, 1) * (1.0 / 16_777_217.0)
        let u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// Normal(0, std) values; element i of row r comes from stream (seed, purpose, step=r... ),
    /// here simply one stream per tensor for initialisation.
    public static func randomNormal(_ shape: [Int], std: Float = 1, seed: UInt64, purpose: UInt32 = 0) -> Tensor {
        var s = RandomStream(seed: seed, purpose: purpose, step: 0, index: 0)
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = s.normal() * std } }
        return t
    }

    /// Uniform(-bound, bound) values, as PyTorch's default conv/linear initialisation draws them.
    public static func randomUniform(_ shape: [Int], bound: Float, seed: UInt64, purpose: UInt32 = 0) -> Tensor {
        var s = RandomStream(seed: seed, purpose: purpose, step: 0, index: 0)
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = (2 * s.uniform() - 1) * bound } }
        return t
    }
}
