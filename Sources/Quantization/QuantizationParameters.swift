import TensorCore

/// Scale and zero point of a uniform quantizer with the integer levels 0...quantMax
/// (quantMax = 2^bits - 1), per tensor or per channel of `axis`:
///
///     q = clamp(round(x / scale) + zeroPoint, 0, quantMax)      (round half to even, as torch)
///     x_hat = (q - zeroPoint) * scale
///
/// This is method.md section 3 and `golden/fake_quant`.
public struct QuantizationParameters: Equatable, Sendable {
    public let bits: Int
    /// One entry per channel of `axis`, or a single entry (per tensor).
    public let scale: [Float]
    public let zeroPoint: [Int32]
    public let axis: Int?

    public var quantMax: Int32 { (1 << Int32(bits)) - 1 }

    public init(bits: Int, scale: [Float], zeroPoint: [Int32], axis: Int?) {
        precondition((1...16).contains(bits), "quantizer of \(bits) bits")
        precondition(scale.count == zeroPoint.count && !scale.isEmpty, "\(scale.count) scales, \(zeroPoint.count) zero points")
        precondition(axis != nil || scale.count == 1, "a per-tensor quantizer has one scale, got \(scale.count)")
        (self.bits, self.scale, self.zeroPoint, self.axis) = (bits, scale, zeroPoint, axis)
    }

    /// The quantizer of the observed range [minimum, maximum] (one entry per channel).
    ///
    /// Affine: the range is widened to contain 0, as torch.ao's observers do, so that 0 (ReLU's
    /// zeros, convolution padding) is exactly a level and the zero point lies in 0...quantMax;
    /// then scale = (max - min) / quantMax and zeroPoint = round(-min / scale). Symmetric: the
    /// 2^b - 1 levels -h...h (h = 2^(b-1) - 1) around zeroPoint 2^(b-1), scale = max|x| / h.
    /// A range of width 0 (an all-zero tensor) gets scale 1: every value is then 0, exactly.
    public init(bits: Int, minimum: [Float], maximum: [Float], symmetric: Bool, axis: Int?) {
        precondition(minimum.count == maximum.count, "\(minimum.count) minima, \(maximum.count) maxima")
        var scales: [Float] = [], zeroPoints: [Int32] = []
        for (lo, hi) in zip(minimum, maximum) {
            let (s, z) = Self.channel(bits: bits, minimum: lo, maximum: hi, symmetric: symmetric)
            scales.append(s)
            zeroPoints.append(z)
        }
        self.init(bits: bits, scale: scales, zeroPoint: zeroPoints, axis: axis)
    }

    /// Scale and zero point of one channel's range, as `init(bits:minimum:maximum:symmetric:axis:)`
    /// computes them (the range searches of `RangeSearch` call it on candidate ranges, so a
    /// candidate's error is measured on exactly the quantizer it would become).
    @inline(__always)
    public static func channel(bits: Int, minimum lo0: Float, maximum hi0: Float, symmetric: Bool) -> (scale: Float, zeroPoint: Int32) {
        let lo = Swift.min(lo0, 0), hi = Swift.max(hi0, 0)
        if symmetric {
            let half = Float((1 << (bits - 1)) - 1)
            let m = Swift.max(-lo, hi)
            return (m > 0 ? m / half : 1, Int32(1 << (bits - 1)))
        } else if hi - lo > 0 {
            let n = Float((1 << bits) - 1)
            let s = (hi - lo) / n
            // -lo/s <= n in exact arithmetic; the min only absorbs a last-bit excess.
            return (s, Int32(Swift.min(roundHalfToEven(-lo / s), n)))
        } else {
            return (1, 0)
        }
    }

    /// x quantized and dequantized (the fake-quantized value), same shape.
    public func fakeQuantize(_ x: Tensor) -> Tensor {
        var out = Tensor(uninitializedShape: x.shape)
        let (outer, channels, inner) = layout(of: x.shape)
        let top = Float(quantMax)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for o in 0..<outer {
                    for c in 0..<channels {
                        let (s, z) = (scale[c], Float(zeroPoint[c]))
                        let base = (o * channels + c) * inner
                        for i in 0..<inner {
                            let q = Swift.min(Swift.max(roundHalfToEven(src[base + i] / s) + z, 0), top)
                            dst[base + i] = (q - z) * s
                        }
                    }
                }
            }
        }
        return out
    }

    /// The integer levels q of x (0...quantMax), in x's element order.
    public func quantize(_ x: Tensor) -> [UInt8] {
        precondition(bits <= 8, "levels of a \(bits)-bit quantizer do not fit a byte")
        let (outer, channels, inner) = layout(of: x.shape)
        let top = Float(quantMax)
        var codes = [UInt8](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in
            for o in 0..<outer {
                for c in 0..<channels {
                    let (s, z) = (scale[c], Float(zeroPoint[c]))
                    let base = (o * channels + c) * inner
                    for i in 0..<inner {
                        codes[base + i] = UInt8(Swift.min(Swift.max(roundHalfToEven(src[base + i] / s) + z, 0), top))
                    }
                }
            }
        }
        return codes
    }

    /// x rounded to the nearest level, round(x / scale) * scale, without clamping to the range
    /// (per tensor): within the range, the value the levels stand for.
    public func roundedToGrid(_ x: Tensor) -> Tensor {
        precondition(axis == nil, "rounding to the grid of a per-tensor quantizer")
        let s = scale[0]
        return x.map { roundHalfToEven($0 / s) * s }
    }

    /// q - zeroPoint for each element of x (per tensor): the operands of integer arithmetic.
    /// They fit Int16 for up to 15 bits, since zeroPoint lies in 0...quantMax.
    public func centredLevels(_ x: Tensor) -> [Int16] {
        precondition(bits <= 15 && axis == nil, "centred levels of a per-tensor quantizer of at most 15 bits, got \(bits) bits, axis \(String(describing: axis))")
        let (s, z, top) = (scale[0], Float(zeroPoint[0]), Float(quantMax))
        var out = [Int16](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in
            for i in 0..<src.count { out[i] = Int16(Swift.min(Swift.max(roundHalfToEven(src[i] / s) + z, 0), top) - z) }
        }
        return out
    }

    /// (elements before the channel axis, channels, elements after it) for a tensor of `shape`.
    func layout(of shape: [Int]) -> (outer: Int, channels: Int, inner: Int) {
        guard let axis else { return (1, 1, shape.reduce(1, *)) }
        precondition(axis < shape.count && shape[axis] == scale.count,
                     "per-channel quantizer of \(scale.count) channels on axis \(axis) of a tensor \(shape)")
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }
}

/// Round half to even (torch.round), written so that it vectorises on the baseline x86-64
/// target, which lacks SSE4.1's rounding instruction: adding and subtracting 1.5 * 2^23 leaves
/// the nearest integer under the default rounding mode. Exact for |v| < 2^22; beyond that the
/// result is still within 1 of v, and every caller clamps to at most 2^16 levels anyway.
@inline(__always)
public func roundHalfToEven(_ v: Float) -> Float {
    (v + 12_582_912) - 12_582_912
}
