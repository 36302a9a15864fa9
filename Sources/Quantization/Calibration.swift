import Autodiff
import TensorCore

extension QuantizedResNet {
    /// Switches every activation observer between calibrating (ranges follow the batches that
    /// pass) and frozen (ranges fixed; the state after conversion). Freezing ends the calibration
    /// (`Observer.finishCalibration`: the MSE observers choose their ranges then).
    public func setCalibrating(_ on: Bool) {
        for (_, q) in activationQuantizers {
            q.isObserverEnabled = on
            if !on { q.observer.finishCalibration() }
        }
    }

    /// State names of activation quantizers that have no range yet.
    public var uncalibratedQuantizers: [String] {
        activationQuantizers.filter { !$0.1.observer.hasRange }.map(\.0)
    }

    /// Throws unless every activation quantizer has a range; `model` names the student in the
    /// message (its file, usually).
    public func requireCalibrated(model: String) throws {
        let missing = uncalibratedQuantizers
        if !missing.isEmpty { throw QuantizationError.uncalibrated(model: model, quantizers: missing) }
    }

    /// Runs `batches` forwards without gradients with the activation observers on, then freezes
    /// them. `batch(i)` gives the i-th batch of images. The student stays in tune mode if it is
    /// in it (batch norms on running statistics either way), else goes to eval mode.
    public func calibrate(batches: Int, _ batch: (Int) -> Tensor) {
        precondition(batches >= 1, "calibration needs at least one batch, got \(batches)")
        setMode(convBNMode == .tune ? .tune : .eval)
        setCalibrating(true)
        defer { setCalibrating(false) }
        for i in 0..<batches { _ = withoutGradients { forward(Variable(batch(i))) } }
    }
}

/// Standard normal images in the normalised input space, the calibration data of Gaussian-noise
/// PTQ. Sample i of batch `step` comes from the stream (seed, purpose, step, i), so the noise
/// does not depend on how batches are split.
/// - shape: [channels, height, width]. Returns [count, channels, height, width].
public func gaussianNoiseImages(count: Int, shape: [Int], seed: UInt64, step: Int) -> Tensor {
    let size = shape.reduce(1, *)
    var images = Tensor(uninitializedShape: [count] + shape)
    images.withUnsafeMutableBufferPointer { p in
        for i in 0..<count {
            var stream = RandomStream(seed: seed, purpose: gaussianNoisePurpose, step: step, index: i)
            for j in 0..<size { p[i * size + j] = stream.normal() }
        }
    }
    return images
}

/// The random-stream purpose of calibration noise ("GNOI"), distinct from the other streams.
let gaussianNoisePurpose: UInt32 = 0x474E_4F49
