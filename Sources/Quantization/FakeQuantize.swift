import Autodiff
import NN
import TensorCore

/// A quantization point: observes what passes (when its observer is enabled), then replaces it by
/// its quantized-and-dequantized value (when fake quantization is enabled). Backward is the
/// straight-through estimator: the gradient passes unchanged (`straightThrough`, Autodiff).
///
/// torch.ao's `FakeQuantize`, with its two switches: `isObserverEnabled` (calibrating) and
/// `isFakeQuantEnabled`. Its buffers are its observer's (`min_val`, `max_val` for activations).
public final class FakeQuantize: Layer {
    public let observer: any Observer
    /// Whether forward updates the observer's range: always for weights (min/max at every
    /// forward), only while calibrating for activations.
    public var isObserverEnabled: Bool
    public var isFakeQuantEnabled = true

    public init(observer: any Observer, observing: Bool) {
        self.observer = observer
        isObserverEnabled = observing
    }

    /// Weights: the range of the current weights at every forward, per output channel by default:
    /// min/max (`MinMaxObserver`) or clipped to the least squared error (`MSEObserver`).
    public static func weight(bits: Int, scheme: QScheme, range: RangeMethod = .minMax) -> FakeQuantize {
        let observer: any Observer = switch range {
        case .minMax: MinMaxObserver(bits: bits, scheme: scheme)
        case .mse: MSEObserver(bits: bits, scheme: scheme)
        }
        return FakeQuantize(observer: observer, observing: true)
    }

    /// Activations: per tensor, an EMA of batch ranges while calibrating, frozen otherwise; with
    /// `.mse` the range is replaced when calibration ends by the least-squared-error range over
    /// every calibration value (`HistogramMSEObserver`).
    public static func activation(bits: Int, scheme: QScheme, momentum: Float, range: RangeMethod = .minMax) -> FakeQuantize {
        let observer: any Observer = switch range {
        case .minMax: MovingAverageMinMaxObserver(bits: bits, scheme: scheme, momentum: momentum)
        case .mse: HistogramMSEObserver(bits: bits, scheme: scheme, momentum: momentum)
        }
        return FakeQuantize(observer: observer, observing: false)
    }

    public var bits: Int { observer.bits }
    public var ownState: [(String, Parameter)] { observer.state }

    /// The parameters the next forward would use (after its observation, for weights).
    public var quantizationParameters: QuantizationParameters { observer.calculateQuantizationParameters() }

    public func forward(_ x: Variable) -> Variable {
        if isObserverEnabled { observer.observe(x.value) }
        guard isFakeQuantEnabled else { return x }
        precondition(observer.hasRange, "fake quantization before its observer saw any data: calibrate first")
        return straightThrough(x, value: observer.calculateQuantizationParameters().fakeQuantize(x.value))
    }
}
