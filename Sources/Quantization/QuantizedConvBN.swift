import Autodiff
import NN
import TensorCore

/// A student's convolution with fake-quantized weights and the eval-mode batch norm after it,
/// plus the rounding of the folded bias that the integer model does (its int32 bias is
/// round(b' / (inputScale * weightScale'))): adding that small per-channel offset, with a
/// straight-through gradient, makes the student compute what the integer model computes.
///
/// Not a layer of the tree: the conv and BN keep their names in the model's state, as NN's ConvBN.
public final class QuantizedConvBN {
    public let conv: QuantizedConv2d
    public let bn: BatchNorm2d
    /// The scale of this convolution's integer input (its input quantizer's, as it is now), the
    /// unit of the integer bias together with the weight scale.
    let inputScale: () -> Float

    init(_ conv: QuantizedConv2d, _ bn: BatchNorm2d, inputScale: @escaping () -> Float) {
        (self.conv, self.bn, self.inputScale) = (conv, bn, inputScale)
    }

    /// Expressed in the scale of `input`, the quantizer that feeds the convolution.
    convenience init(_ conv: QuantizedConv2d, _ bn: BatchNorm2d, input: FakeQuantize) {
        self.init(conv, bn) { input.quantizationParameters.scale[0] }
    }

    /// - x: [N, in, H, W]. Returns [N, out, Ho, Wo].
    public func forward(_ x: Variable) -> Variable {
        let y = bn(conv(x))
        let weight = conv.weightFakeQuant.quantizationParameters
        let folding = Folding(conv.conv, bn)
        let unit = inputScale()
        let units = (0..<bn.channels).map { unit * folding.weightScale(weight, channel: $0) }
        return straightThrough(y, value: y.value.addingChannelBias(biasRoundingCorrection(folding.bias, units: units)))
    }
}
