import Autodiff
import NN
import TensorCore

/// A student's convolution and the batch norm after it (running statistics), run according to
/// the block's mode, which follows the model's (`QuantizedResNet.setMode`):
/// - eval: the conv with its weight fake-quantized, then the batch norm. The integer export
///   folds the BN afterwards, which moves no weight off its grid (`IntegerExport`).
/// - tune: the folded weight w' = w * s and bias b' = (b - mean) * s + beta computed from the
///   real parameters at every forward (differentiable in w, b, gamma and beta), w' fake-quantized
///   per output channel by the weight quantizer (straight-through), and one convolution with
///   bias b' (method.md section 6): the integer export quantizes the same w' the same way.
/// In both, the block adds the rounding of the folded bias that the integer model does (its
/// int32 bias is round(b' / (inputScale * weightScale'))): that small per-channel offset, with a
/// straight-through gradient, makes the student compute what the integer model computes.
///
/// Not a layer of the tree: the conv and BN keep their names in the model's state, as NN's ConvBN.
public final class QuantizedConvBN {
    public let conv: QuantizedConv2d
    public let bn: BatchNorm2d
    /// `.eval` (quantize the conv weight, BN after) or `.tune` (quantize the folded weight).
    /// `.train` is refused by the student's forward (its BN keeps the teacher's statistics);
    /// there is no `.deploy`: the deployed student is the integer model.
    public var mode: Mode = .eval
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
        switch mode {
        case .tune:
            return tuneForward(x)
        case .eval, .train:
            let y = bn(conv(x))
            let weight = conv.weightFakeQuant.quantizationParameters
            let folding = Folding(conv.conv, bn)
            let unit = inputScale()
            let units = (0..<bn.channels).map { unit * folding.weightScale(weight, channel: $0) }
            return straightThrough(y, value: y.value.addingChannelBias(biasRoundingCorrection(folding.bias, units: units)))
        case .deploy:
            preconditionFailure("the quantized student has no deploy mode: export it (IntegerResNet) instead")
        }
    }

    /// Why tune mode cannot apply, or nil when it can.
    public var foldingObstacle: String? {
        if bn.mode.usesBatchStatistics { return "its batch norm is in train mode (batch statistics change every step)" }
        if !bn.tracksRunningStatistics { return "its batch norm keeps no running statistics" }
        if bn.weight == nil || bn.bias == nil { return "its batch norm has no affine parameters" }
        return nil
    }

    /// The folded weight w' = w * s and bias b' = (b - mean) * s + beta, differentiable in the
    /// real parameters (tune mode's, before w' is fake-quantized).
    public func foldedParameters() -> (weight: Variable, bias: Variable) {
        precondition(foldingObstacle == nil, "tune mode does not apply to this block: \(foldingObstacle ?? "")")
        let c = conv.conv
        let w = foldedConvWeight(c.weight.variable, gamma: bn.weight!.variable, runningVar: bn.runningVar.value, eps: bn.eps)
        let b = foldedConvBias(c.bias?.variable, gamma: bn.weight!.variable, beta: bn.bias!.variable,
                               runningMean: bn.runningMean.value, runningVar: bn.runningVar.value, eps: bn.eps)
        return (w, b)
    }

    /// Tune mode: fold, fake-quantize the folded weight, one convolution, integer-bias rounding.
    private func tuneForward(_ x: Variable) -> Variable {
        let (w, b) = foldedParameters()
        let quantizer = conv.weightFakeQuant
        let y = conv2d(x, weight: quantizer(w), bias: b, stride: conv.conv.stride, padding: conv.conv.padding)
        let unit = inputScale()
        let units = foldedWeightScales(quantizer.quantizationParameters).map { unit * $0 }
        return straightThrough(y, value: y.value.addingChannelBias(biasRoundingCorrection(b.value.scalars, units: units)))
    }

    /// Tune mode's weight scale per output channel, the unit of the integer bias with the input
    /// scale: the folded weight's, except for a channel with s = 0 under a per-channel scheme.
    /// Its folded weight is all zero, quantized at the placeholder scale 1, which would round its
    /// bias to whole input steps; it keeps the conv weight's own scale instead, as eval mode does
    /// (its levels are all at the zero point either way, so the scale only sets the bias unit).
    func foldedWeightScales(_ folded: QuantizationParameters) -> [Float] {
        let factor = bn.fold(convBias: nil).scale
        var scales = (0..<bn.channels).map { folded.scale[folded.axis == nil ? 0 : $0] }
        guard folded.axis != nil, factor.contains(0) else { return scales }
        let (lo, hi) = channelRange(conv.conv.weight.value, axis: 0)
        let own = QuantizationParameters(bits: folded.bits, minimum: lo, maximum: hi,
                                         symmetric: conv.weightFakeQuant.observer.scheme.isSymmetric, axis: 0)
        for c in 0..<bn.channels where factor[c] == 0 { scales[c] = own.scale[c] }
        return scales
    }
}
