/// The search behind `RangeMethod.mse`: the range [a * min, b * max] whose quantizer
/// (`QuantizationParameters.channel`, the very formula the quantizer will use) gives the least
/// summed squared error on the values, the clipping ratios a and b from a grid. First both ends
/// move together (a = b, the whole grid); then, for asymmetric schemes, the upper end alone over
/// the grid with the lower one fixed, then the lower end alone: an outlier on one side is clipped
/// without clipping the other side's bulk. The grid starts at 1 (the min/max range) and a
/// candidate replaces the best only when strictly better, so the chosen range is never worse
/// than min/max on the values it was chosen on.
public enum RangeSearch {
    /// Weights: r = 1.00, 0.99, ..., 0.20 (81 ratios per end). Searched for every channel at every
    /// forward, so kept short.
    public static let weightRatios: [Float] = (0...80).map { Float(100 - $0) / 100 }
    /// Activations: r = 1.000, 0.995, ..., 0.010 (199 ratios), searched once over a histogram of
    /// every calibration value (cheap: 8192 bins per candidate). The extremes of many batches of
    /// up to a million values each lie further out in the tail than a weight channel's, so the
    /// grid reaches lower.
    public static let activationRatios: [Float] = (0...198).map { Float(1000 - 5 * $0) / 1000 }

    /// Sum over `values` of (x_hat - x)^2 for the quantizer (scale, zeroPoint, levels 0...top):
    /// x_hat as `QuantizationParameters.fakeQuantize` computes it, eight values at a time.
    @inline(__always)
    static func squaredError(_ values: UnsafeBufferPointer<Float>, scale s: Float, zeroPoint z: Float, top: Float) -> Float {
        let count = values.count, whole = count / 8 * 8
        let (sv, zv, tv) = (SIMD8<Float>(repeating: s), SIMD8<Float>(repeating: z), SIMD8<Float>(repeating: top))
        let (magic, zero) = (SIMD8<Float>(repeating: 12_582_912), SIMD8<Float>(repeating: 0))
        var sum = SIMD8<Float>(repeating: 0)
        guard let base = values.baseAddress else { return 0 }
        var i = 0
        while i < whole {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self)
            // roundHalfToEven, lane by lane (see its comment), then clamp to the levels.
            let q = ((x / sv + magic) - magic + zv).clamped(lowerBound: zero, upperBound: tv)
            let d = (q - zv) * sv - x
            sum += d * d
            i += 8
        }
        var total = sum.sum()
        while i < count {
            let x = values[i]
            let q = Swift.min(Swift.max(roundHalfToEven(x / s) + z, 0), top)
            let d = (q - z) * s - x
            total += d * d
            i += 1
        }
        return total
    }

    /// The clipping ratios (lower, upper) of least squared error, searched as the type's comment
    /// says; `errorOf(scale, zeroPoint)` measures one candidate quantizer.
    static func bestRatios(minimum: Float, maximum: Float, bits: Int, symmetric: Bool, ratios: [Float],
                           errorOf: (_ scale: Float, _ zeroPoint: Float) -> Double) -> Ratios {
        func error(_ a: Float, _ b: Float) -> Double {
            let (s, z) = QuantizationParameters.channel(bits: bits, minimum: a * minimum, maximum: b * maximum, symmetric: symmetric)
            return errorOf(s, Float(z))
        }
        var best = Ratios(lower: 1, upper: 1)
        var bestError = error(1, 1)
        for r in ratios where r != 1 {
            let e = error(r, r)
            if e < bestError { (best, bestError) = (Ratios(lower: r, upper: r), e) }
        }
        // A symmetric quantizer sees only the larger magnitude; an end at 0 has nothing to clip.
        guard !symmetric else { return best }
        if maximum > 0 {
            for r in ratios where r != best.upper {
                let e = error(best.lower, r)
                if e < bestError { (best.upper, bestError) = (r, e) }
            }
        }
        if minimum < 0 {
            for r in ratios where r != best.lower {
                let e = error(r, best.upper)
                if e < bestError { (best.lower, bestError) = (r, e) }
            }
        }
        return best
    }

    /// Clipping ratios of a range's lower and upper ends (1: the observed minimum or maximum).
    public struct Ratios: Equatable, Sendable {
        public var lower: Float, upper: Float

        public init(lower: Float, upper: Float) {
            (self.lower, self.upper) = (lower, upper)
        }
    }

    /// The range of least squared error for one channel's `values` (their minimum and maximum
    /// given), searched over `ratios`; returns the clipped minimum and maximum and the ratios.
    public static func range(of values: UnsafeBufferPointer<Float>, minimum: Float, maximum: Float, bits: Int,
                             symmetric: Bool, ratios: [Float] = weightRatios) -> (minimum: Float, maximum: Float, ratios: Ratios) {
        let top = Float((1 << bits) - 1)
        let r = bestRatios(minimum: minimum, maximum: maximum, bits: bits, symmetric: symmetric, ratios: ratios) { s, z in
            Double(squaredError(values, scale: s, zeroPoint: z, top: top))
        }
        return (r.lower * minimum, r.upper * maximum, r)
    }
}
