import NN
import TensorCore

/// The quantized student of a full-precision model: a copy of its parameters and buffers (the
/// teacher itself is left untouched, it stays the distillation target), wrapped with weight and
/// activation quantizers, in eval mode so that batch norm keeps the teacher's running statistics.
/// The activation quantizers have no range until calibrated (`QuantizedResNet.calibrate`).
/// - inputRange: the normalised pixel range (`normalisedPixelRange`): the range of the 8-bit
///   image quantizer, the integer model's input (applied by the student with `quantizeInput`).
public func quantize(_ model: any Layer, config: QuantizationConfig,
                     inputRange: ClosedRange<Float>) throws -> QuantizedResNet {
    try config.validate()
    let name = String(describing: type(of: model))
    guard model.allLayers().contains(where: { $0 is Conv2d || $0 is Linear }) else {
        throw QuantizationError.noQuantizableLayer(model: name)
    }
    guard let teacher = model as? ResNet else { throw QuantizationError.unsupportedArchitecture(model: name) }
    let copy = ResNet(teacher.config)
    for ((_, mine), (_, theirs)) in zip(copy.namedState(), teacher.namedState()) { mine.assign(theirs.value) }
    for (mine, theirs) in zip(copy.batchNorms, teacher.batchNorms) { (mine.eps, mine.momentum) = (theirs.eps, theirs.momentum) }
    let student = QuantizedResNet(wrapping: copy, config: config, inputRange: inputRange)
    student.setMode(.eval)
    return student
}

/// The range of normalised images x = (p / 255 - mean) / std over all pixel values p and
/// channels: what the 8-bit input quantizer covers. For Fashion-MNIST its 256 levels are the
/// 256 pixel values (scale 1 / (255 std)), shifted by 0.07 of a level by the rounding of the
/// zero point round(255 mean) = 73.
public func normalisedPixelRange(mean: [Float], std: [Float]) -> ClosedRange<Float> {
    precondition(mean.count == std.count && !mean.isEmpty, "normalisation mean \(mean), std \(std)")
    let lo = zip(mean, std).map { -$0 / $1 }.min()!
    let hi = zip(mean, std).map { (1 - $0) / $1 }.max()!
    return lo...hi
}
