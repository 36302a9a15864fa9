import TensorCore

/// A convolution with BN folded in, as integers: weight levels per output channel with their own
/// scale and zero point, an int32 bias at scale inputScale * weightScale[o], and the input
/// quantizer it was exported for (the bias's scale depends on it).
public struct IntegerConv2d {
    public let outChannels, inChannels, kernel, stride, padding: Int
    public let weightBits: Int
    /// [outChannels, inChannels * kernel * kernel] levels in 0..<2^weightBits.
    public let weightLevels: [UInt8]
    public let weightScale: [Float]
    public let weightZeroPoint: [Int32]
    public let bias: [Int32]
    public let input: QuantizationParameters
    /// (level - zero point) per weight, the operand of the integer products.
    let centredWeights: [Int16]

    public init(outChannels: Int, inChannels: Int, kernel: Int, stride: Int, padding: Int, weightBits: Int,
                weightLevels: [UInt8], weightScale: [Float], weightZeroPoint: [Int32], bias: [Int32],
                input: QuantizationParameters) {
        let patch = inChannels * kernel * kernel
        precondition(weightLevels.count == outChannels * patch && weightScale.count == outChannels
                     && weightZeroPoint.count == outChannels && bias.count == outChannels,
                     "integer conv \(outChannels)x\(inChannels)x\(kernel)x\(kernel): inconsistent tensors")
        (self.outChannels, self.inChannels, self.kernel, self.stride, self.padding) = (outChannels, inChannels, kernel, stride, padding)
        (self.weightBits, self.weightLevels, self.weightScale, self.weightZeroPoint, self.bias, self.input) =
            (weightBits, weightLevels, weightScale, weightZeroPoint, bias, input)
        centredWeights = (0..<weightLevels.count).map { Int16(weightLevels[$0]) - Int16(weightZeroPoint[$0 / patch]) }
    }

    /// The largest |accumulator| any input can produce: patch * max|x - zp| * max|w - zp| + |bias|.
    public var accumulatorBound: Int {
        let x = Int(Swift.max(input.zeroPoint[0], input.quantMax - input.zeroPoint[0]))
        let w = centredWeights.map { abs(Int($0)) }.max() ?? 0
        return inChannels * kernel * kernel * x * w + (bias.map { abs(Int($0)) }.max() ?? 0)
    }

    /// - x: [N, inChannels, H, W] levels of the quantizer `input`. Returns float [N, out, Ho, Wo]:
    ///   (int32 accumulator + bias) * inputScale * weightScale[o].
    public func forward(_ x: QuantizedActivation) -> Tensor {
        precondition(x.parameters == input, "integer conv exported for input \(input), got \(x.parameters)")
        let g = ConvGeometry(input: x.shape, weight: [outChannels, inChannels, kernel, kernel], stride: stride, padding: padding)
        let outputScale = weightScale.map { $0 * input.scale[0] }
        return integerConvolution(g, input: x.centred, weights: centredWeights, bias: bias, outputScale: outputScale)
    }
}
