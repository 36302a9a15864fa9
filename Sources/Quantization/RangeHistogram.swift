import TensorCore

/// Every value a quantization point saw, as counts in bins of equal width on each side of zero:
/// what `HistogramMSEObserver` searches its range over. When a value falls beyond the covered
/// range the bin width doubles (adjacent bins merged), which is exact: no count is ever split
/// between bins. Values are thus kept at a resolution of at least `binsPerSide / 2` bins over
/// the largest magnitude seen (tens of bins per level at 4 and 3 bits). Exact zeros (ReLU's) are
/// counted apart: 0 is a level of every range, so they are quantized without error.
struct RangeHistogram {
    static let binsPerSide = 4096
    /// Counts of magnitudes in [i * width, (i + 1) * width), width = limit / binsPerSide, for
    /// positive and negative values (the top bin also holds magnitude `limit` itself).
    private(set) var positive = [Double](repeating: 0, count: binsPerSide)
    private(set) var negative = [Double](repeating: 0, count: binsPerSide)
    /// Each side covers magnitudes up to `limit` (0 until a nonzero value arrives).
    private(set) var limit: Float = 0
    private(set) var zeros: Double = 0
    private(set) var minimum = Float.infinity, maximum = -Float.infinity

    var isEmpty: Bool { minimum > maximum }

    /// Adds every value of x.
    mutating func add(_ x: Tensor) {
        let (lo, hi) = channelRange(x, axis: nil)
        (minimum, maximum) = (Swift.min(minimum, lo[0]), Swift.max(maximum, hi[0]))
        let magnitude = Swift.max(-lo[0], hi[0])
        precondition(magnitude.isFinite, "a histogram of a tensor with a non-finite value (range \(lo[0])...\(hi[0]))")
        if limit == 0 { limit = magnitude }
        while magnitude > limit { mergePairs() }
        guard limit > 0 else { zeros += Double(x.count); return }
        let perUnit = Float(Self.binsPerSide) / limit, last = Self.binsPerSide - 1
        x.withUnsafeBufferPointer { p in
            positive.withUnsafeMutableBufferPointer { pos in
                negative.withUnsafeMutableBufferPointer { neg in
                    for v in p {
                        if v > 0 {
                            pos[Swift.min(Int(v * perUnit), last)] += 1
                        } else if v < 0 {
                            neg[Swift.min(Int(-v * perUnit), last)] += 1
                        } else {
                            zeros += 1
                        }
                    }
                }
            }
        }
    }

    /// Doubles the bin width: bins 2i and 2i + 1 become bin i.
    private mutating func mergePairs() {
        let half = Self.binsPerSide / 2
        for side in [\RangeHistogram.positive, \RangeHistogram.negative] {
            var merged = [Double](repeating: 0, count: Self.binsPerSide)
            for i in 0..<half { merged[i] = self[keyPath: side][2 * i] + self[keyPath: side][2 * i + 1] }
            self[keyPath: side] = merged
        }
        limit *= 2
    }

    /// Summed squared quantization error of the counted values, each bin's values taken at its
    /// centre, for the quantizer (scale, zeroPoint, levels 0...top). Zeros add nothing.
    func squaredError(scale s: Float, zeroPoint z: Float, top: Float) -> Double {
        let width = limit / Float(Self.binsPerSide)
        var total = 0.0
        for (counts, sign) in [(positive, Float(1)), (negative, Float(-1))] {
            for i in 0..<Self.binsPerSide where counts[i] > 0 {
                let x = sign * (Float(i) + 0.5) * width
                let q = Swift.min(Swift.max(roundHalfToEven(x / s) + z, 0), top)
                let d = Double((q - z) * s - x)
                total += counts[i] * d * d
            }
        }
        return total
    }

    /// The range [a * minimum, b * maximum] of least squared error over the counted values, a and
    /// b from `ratios` (`RangeSearch`: never worse than min/max), and the ratios. Needs a value.
    func mseRange(bits: Int, symmetric: Bool, ratios: [Float]) -> (minimum: Float, maximum: Float, ratios: RangeSearch.Ratios) {
        precondition(!isEmpty, "range of an empty histogram")
        let top = Float((1 << bits) - 1)
        let r = RangeSearch.bestRatios(minimum: minimum, maximum: maximum, bits: bits, symmetric: symmetric, ratios: ratios) { s, z in
            squaredError(scale: s, zeroPoint: z, top: top)
        }
        return (r.lower * minimum, r.upper * maximum, r)
    }
}
