import NN
import TensorCore

/// A per-tensor activation observer for `RangeMethod.mse`. While calibrating it is the default
/// `MovingAverageMinMaxObserver` (the EMA of batch ranges quantizes the activations the later
/// layers see during calibration, as with min/max) and it also counts every value in a
/// `RangeHistogram`. When calibration ends (`finishCalibration`) the range becomes the
/// histogram's min/max clipped by the ratios of least quantization squared error over all those
/// values (`RangeSearch`, `RangeSearch.activationRatios`), written into the same buffers `min_val` and
/// `max_val`; the histogram is dropped and the range stays frozen, saved with the model like the
/// EMA's (a loaded student needs no histogram).
public final class HistogramMSEObserver: Observer {
    public let bits: Int
    public let scheme: QScheme
    public let ratios: [Float]
    /// The range during calibration and the buffers of the final one.
    public let movingAverage: MovingAverageMinMaxObserver
    private var histogram = RangeHistogram()
    /// The clipping ratios of the last calibration's range (nil before one ended).
    public private(set) var chosenRatios: RangeSearch.Ratios?

    public init(bits: Int, scheme: QScheme, momentum: Float = 0.9, ratios: [Float] = RangeSearch.activationRatios) {
        precondition(scheme.axis == nil, "HistogramMSEObserver is per tensor, got \(scheme)")
        precondition(!ratios.isEmpty && ratios.allSatisfy { $0 > 0 && $0 <= 1 }, "clipping ratios must lie in (0, 1], got \(ratios)")
        (self.bits, self.scheme, self.ratios) = (bits, scheme, ratios)
        movingAverage = MovingAverageMinMaxObserver(bits: bits, scheme: scheme, momentum: momentum)
    }

    public var hasRange: Bool { movingAverage.hasRange }
    public var state: [(String, Parameter)] { movingAverage.state }

    public func observe(_ x: Tensor) {
        movingAverage.observe(x)
        histogram.add(x)
    }

    /// Replaces the EMA range by the histogram's range of least squared error. Without values
    /// seen since the last call (a quantizer switched off without calibrating) it does nothing.
    public func finishCalibration() {
        guard !histogram.isEmpty else { return }
        let found = histogram.mseRange(bits: bits, symmetric: scheme.isSymmetric, ratios: ratios)
        movingAverage.setRange(found.minimum, found.maximum)
        chosenRatios = found.ratios
        histogram = RangeHistogram()
    }

    public func calculateQuantizationParameters() -> QuantizationParameters {
        movingAverage.calculateQuantizationParameters()
    }
}
