import Autodiff
import NN
import TensorCore

/// A batch norm in eval mode folded into the convolution before it (method.md section 6):
/// with s = gamma / sqrt(var + eps) per output channel, w' = w * s and b' = (b - mean) * s + beta.
struct Folding {
    /// s per output channel.
    let factor: [Float]
    /// b' per output channel.
    let bias: [Float]

    init(_ conv: Conv2d, _ bn: BatchNorm2d) {
        let fold = bn.fold(convBias: conv.bias?.value.scalars)
        factor = fold.scale
        bias = fold.bias
    }

    /// The scale of channel c's folded weight levels: |s| times the student's weight scale
    /// (the levels are mirrored when s < 0; a zero channel keeps the student's scale).
    func weightScale(_ weight: QuantizationParameters, channel c: Int) -> Float {
        let scale = weight.scale[weight.axis == nil ? 0 : c]
        return factor[c] == 0 ? scale : abs(factor[c]) * scale
    }
}

/// The integer model stores each layer's bias as round(b / unit) at unit = inputScale *
/// weightScale[o], one unit per output channel. In double precision, so that the quotient is
/// rounded to the nearest integer even beyond float32's 2^24.
func biasLevels(_ bias: [Float], units: [Float]) -> [Double] {
    zip(bias, units).map { (Double($0) / Double($1)).rounded(.toNearestOrEven) }
}

/// What the integer model's rounded bias adds to a layer's float output, per output channel:
/// round(b / unit) * unit - b. The student adds it (with a straight-through gradient), so that it
/// computes what the integer model computes.
func biasRoundingCorrection(_ bias: [Float], units: [Float]) -> [Float] {
    zip(biasLevels(bias, units: units), zip(bias, units)).map { level, bu in Float(level * Double(bu.1) - Double(bu.0)) }
}

extension Tensor {
    /// A copy with `perChannel[c]` added to every element of channel c of an [N, C, ...] tensor.
    func addingChannelBias(_ perChannel: [Float]) -> Tensor {
        var out = self
        out.addChannelBias(Tensor(shape: [perChannel.count], scalars: perChannel))
        return out
    }
}
