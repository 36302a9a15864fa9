import NN
import TensorCore

/// A BasicBlock of the integer model: integer convolutions (BN folded) and the activation
/// quantizers after its two ReLUs. The residual addition and the ReLUs run in float on the
/// rescaled accumulators, as in the fake-quantized student.
public struct IntegerBasicBlock {
    public let c1: IntegerConv2d
    public let act1: QuantizationParameters
    public let c2: IntegerConv2d
    public let shortcut: IntegerConv2d?
    public let act2: QuantizationParameters

    func forward(_ x: QuantizedActivation) -> QuantizedActivation {
        let h = QuantizedActivation(quantizing: relu(c1.forward(x)), with: act1)
        var out = c2.forward(h)
        out.add(shortcut?.forward(x) ?? x.dequantized())
        return QuantizedActivation(quantizing: relu(out), with: act2)
    }
}

/// The exported student: every convolution and the classifier in integer arithmetic (Int16
/// operands, int32 accumulation of (q_x - zp_x)(q_w - zp_w), int32 bias), BN folded into the
/// convolutions. Between layers the accumulators are rescaled to float, the residual added, ReLU
/// applied and the result quantized again to the next layer's levels: the requantization is
/// float arithmetic, not a fixed-point multiplier.
///
/// The image is quantized over the normalised pixel range, the stem's integer input: at 8 bits when
/// the student quantizes its input, at 15 bits (standing in for float) when it does not.
public struct IntegerResNet {
    public let architecture: ResNetConfig
    public let imageShape: [Int]
    public let input: QuantizationParameters
    public let stem: IntegerConv2d
    public let stemActivation: QuantizationParameters
    public let blocks: [IntegerBasicBlock]
    public let fc: IntegerLinear

    /// - images: [N, C, H, W] normalised images. Returns logits [N, classes].
    public func logits(_ images: Tensor) -> Tensor {
        precondition(Array(images.shape.dropFirst()) == imageShape,
                     "integer \(architecture.name) takes images \(imageShape), got \(images.shape)")
        let x = QuantizedActivation(quantizing: images, with: input)
        var h = QuantizedActivation(quantizing: relu(stem.forward(x)), with: stemActivation)
        for block in blocks { h = block.forward(h) }
        return fc.forward(h)
    }
}

private func relu(_ x: Tensor) -> Tensor { x.map { Swift.max($0, 0) } }
