import NN
import TensorCore

/// Watches the tensors that pass a quantization point and turns what it saw into quantization
/// parameters (torch.ao's observer contract: `forward` records, `calculate_qparams` answers).
public protocol Observer: AnyObject {
    var bits: Int { get }
    var scheme: QScheme { get }
    /// Records the range of x.
    func observe(_ x: Tensor)
    /// Whether any tensor has been observed (or a range was loaded), so parameters exist.
    var hasRange: Bool { get }
    func calculateQuantizationParameters() -> QuantizationParameters
    /// Buffers saved with the model (the observed range), with local names.
    var state: [(String, Parameter)] { get }
    /// Called when a calibration ends (`QuantizedResNet.setCalibrating(false)`): an observer that
    /// chooses its range from everything it saw does so here. Nothing to do for the others.
    func finishCalibration()
}

extension Observer {
    public func finishCalibration() {}
}

/// The range of the last tensor observed, per tensor or per channel: what weight quantizers use,
/// recomputed from the current weights at every forward, so nothing needs saving.
public final class MinMaxObserver: Observer {
    public let bits: Int
    public let scheme: QScheme
    private var minimum: [Float] = [], maximum: [Float] = []

    public init(bits: Int, scheme: QScheme) {
        (self.bits, self.scheme) = (bits, scheme)
    }

    public func observe(_ x: Tensor) {
        (minimum, maximum) = channelRange(x, axis: scheme.axis)
    }

    public var hasRange: Bool { !minimum.isEmpty }
    public var state: [(String, Parameter)] { [] }

    public func calculateQuantizationParameters() -> QuantizationParameters {
        precondition(hasRange, "MinMaxObserver: no tensor observed yet")
        return QuantizationParameters(bits: bits, minimum: minimum, maximum: maximum,
                                      symmetric: scheme.isSymmetric, axis: scheme.axis)
    }
}

/// A per-tensor range that is an exponential moving average of batch minima and maxima:
/// `range = momentum * range + (1 - momentum) * batch`, started at the first batch's own range
/// (a plain EMA: GDFQ's bias-corrected one feeds its corrected value back and inflates the range
/// for about 200 steps, see method.md section 3). The range lives in buffers `min_val` and
/// `max_val` (torch.ao's names), +inf and -inf until the first batch, and is saved with the model.
public final class MovingAverageMinMaxObserver: Observer {
    public let bits: Int
    public let scheme: QScheme
    public let momentum: Float
    public let minimum = Parameter(Tensor.scalar(.infinity), kind: .buffer)
    public let maximum = Parameter(Tensor.scalar(-.infinity), kind: .buffer)

    public init(bits: Int, scheme: QScheme, momentum: Float = 0.9) {
        precondition(scheme.axis == nil, "MovingAverageMinMaxObserver is per tensor, got \(scheme)")
        precondition(momentum >= 0 && momentum < 1, "EMA momentum \(momentum) outside [0, 1)")
        (self.bits, self.scheme, self.momentum) = (bits, scheme, momentum)
    }

    public var hasRange: Bool { minimum.value.item.isFinite && maximum.value.item.isFinite }
    public var state: [(String, Parameter)] { [("min_val", minimum), ("max_val", maximum)] }

    public func observe(_ x: Tensor) {
        let (lo, hi) = channelRange(x, axis: nil)
        guard hasRange else { setRange(lo[0], hi[0]); return }
        let m = momentum
        setRange(m * minimum.value.item + (1 - m) * lo[0], m * maximum.value.item + (1 - m) * hi[0])
    }

    /// Sets the range directly (a fixed input range, or a test).
    public func setRange(_ lo: Float, _ hi: Float) {
        minimum.assign(Tensor.scalar(lo))
        maximum.assign(Tensor.scalar(hi))
    }

    public func calculateQuantizationParameters() -> QuantizationParameters {
        precondition(hasRange, "MovingAverageMinMaxObserver: no batch observed yet (calibrate first)")
        return QuantizationParameters(bits: bits, minimum: [minimum.value.item], maximum: [maximum.value.item],
                                      symmetric: scheme.isSymmetric, axis: nil)
    }
}

/// Minimum and maximum of x per channel of `axis` (or over everything when nil).
func channelRange(_ x: Tensor, axis: Int?) -> (minimum: [Float], maximum: [Float]) {
    let shape = x.shape
    let (outer, channels, inner): (Int, Int, Int)
    if let axis {
        precondition(axis < shape.count, "channel axis \(axis) of a tensor \(shape)")
        (outer, channels, inner) = (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    } else {
        (outer, channels, inner) = (1, 1, x.count)
    }
    precondition(x.count > 0, "range of an empty tensor \(shape)")
    var lo = [Float](repeating: .infinity, count: channels), hi = [Float](repeating: -.infinity, count: channels)
    x.withUnsafeBufferPointer { p in
        for o in 0..<outer {
            for c in 0..<channels {
                let base = (o * channels + c) * inner
                var a = lo[c], b = hi[c]
                for i in 0..<inner {
                    let v = p[base + i]
                    a = Swift.min(a, v)
                    b = Swift.max(b, v)
                }
                (lo[c], hi[c]) = (a, b)
            }
        }
    }
    return (lo, hi)
}
