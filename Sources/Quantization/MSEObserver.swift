import NN
import TensorCore

/// A weight observer like `MinMaxObserver` (per output channel or per tensor, recomputed from the
/// current weights at every forward, no state), whose range is each channel's min/max clipped by
/// the ratios of least quantization squared error on that channel's own values (`RangeSearch`,
/// ratios 1.00 down to 0.20, both ends together, then each end alone). Channels are searched independently: one channel's outlier does
/// not move another's range. The straight-through gradient is the fake quantizer's, unchanged.
public final class MSEObserver: Observer {
    public let bits: Int
    public let scheme: QScheme
    public let ratios: [Float]
    private var minimum: [Float] = [], maximum: [Float] = []
    /// The clipping ratios chosen for each channel at the last observation (1: min/max).
    public private(set) var chosenRatios: [RangeSearch.Ratios] = []

    public init(bits: Int, scheme: QScheme, ratios: [Float] = RangeSearch.weightRatios) {
        precondition(!ratios.isEmpty && ratios.allSatisfy { $0 > 0 && $0 <= 1 }, "clipping ratios must lie in (0, 1], got \(ratios)")
        (self.bits, self.scheme, self.ratios) = (bits, scheme, ratios)
    }

    /// - x: a weight, e.g. [out, in, kh, kw] or [out, in] with the scheme's axis 0, or any shape per tensor.
    public func observe(_ x: Tensor) {
        let (lo, hi) = channelRange(x, axis: scheme.axis)
        let (outer, channels, inner): (Int, Int, Int)
        if let axis = scheme.axis {
            (outer, channels, inner) = (x.shape[..<axis].reduce(1, *), x.shape[axis], x.shape[(axis + 1)...].reduce(1, *))
        } else {
            (outer, channels, inner) = (1, 1, x.count)
        }
        var (clippedLo, clippedHi, chosen) = (lo, hi, [RangeSearch.Ratios](repeating: .init(lower: 1, upper: 1), count: channels))
        // A channel's values are contiguous when nothing precedes the axis (axis 0, or per tensor);
        // otherwise they are gathered first.
        var gathered = [Float](repeating: 0, count: outer > 1 ? outer * inner : 0)
        x.withUnsafeBufferPointer { p in
            for c in 0..<channels {
                let search = { (values: UnsafeBufferPointer<Float>) in
                    RangeSearch.range(of: values, minimum: lo[c], maximum: hi[c], bits: self.bits,
                                      symmetric: self.scheme.isSymmetric, ratios: self.ratios)
                }
                let found: (minimum: Float, maximum: Float, ratios: RangeSearch.Ratios)
                if outer == 1 {
                    found = search(UnsafeBufferPointer(rebasing: p[(c * inner)..<((c + 1) * inner)]))
                } else {
                    for o in 0..<outer {
                        for i in 0..<inner { gathered[o * inner + i] = p[(o * channels + c) * inner + i] }
                    }
                    found = gathered.withUnsafeBufferPointer(search)
                }
                (clippedLo[c], clippedHi[c], chosen[c]) = found
            }
        }
        (minimum, maximum, chosenRatios) = (clippedLo, clippedHi, chosen)
    }

    public var hasRange: Bool { !minimum.isEmpty }
    public var state: [(String, Parameter)] { [] }

    public func calculateQuantizationParameters() -> QuantizationParameters {
        precondition(hasRange, "MSEObserver: no tensor observed yet")
        return QuantizationParameters(bits: bits, minimum: minimum, maximum: maximum,
                                      symmetric: scheme.isSymmetric, axis: scheme.axis)
    }
}
