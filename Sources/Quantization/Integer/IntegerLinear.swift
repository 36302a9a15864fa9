import TensorCore

/// The classifier on the average pool of a quantized activation, as integers: its operands are
/// the per-channel sums of centred levels over the pooled positions (the pool's division is
/// folded into the output scale), so the pool needs no requantization.
public struct IntegerLinear {
    public let outFeatures, inFeatures: Int
    public let weightBits: Int
    /// [outFeatures, inFeatures] levels.
    public let weightLevels: [UInt8]
    public let weightScale: [Float]
    public let weightZeroPoint: [Int32]
    /// At scale input.scale / pooledPositions * weightScale[o].
    public let bias: [Int32]
    public let input: QuantizationParameters
    /// Positions averaged by the pool before this layer (H * W of the last stage).
    public let pooledPositions: Int
    let centredWeights: [Int32]

    public init(outFeatures: Int, inFeatures: Int, weightBits: Int, weightLevels: [UInt8], weightScale: [Float],
                weightZeroPoint: [Int32], bias: [Int32], input: QuantizationParameters, pooledPositions: Int) {
        precondition(weightLevels.count == outFeatures * inFeatures && weightScale.count == outFeatures
                     && weightZeroPoint.count == outFeatures && bias.count == outFeatures && pooledPositions > 0,
                     "integer linear \(outFeatures)x\(inFeatures): inconsistent tensors")
        (self.outFeatures, self.inFeatures, self.weightBits, self.weightLevels) = (outFeatures, inFeatures, weightBits, weightLevels)
        (self.weightScale, self.weightZeroPoint, self.bias, self.input, self.pooledPositions) =
            (weightScale, weightZeroPoint, bias, input, pooledPositions)
        centredWeights = (0..<weightLevels.count).map { Int32(weightLevels[$0]) - weightZeroPoint[$0 / inFeatures] }
    }

    public var accumulatorBound: Int {
        let x = Int(Swift.max(input.zeroPoint[0], input.quantMax - input.zeroPoint[0])) * pooledPositions
        let w = centredWeights.map { abs(Int($0)) }.max() ?? 0
        return inFeatures * x * w + (bias.map { abs(Int($0)) }.max() ?? 0)
    }

    /// - x: levels [N, inFeatures, H, W] with H * W == pooledPositions. Returns logits [N, out].
    public func forward(_ x: QuantizedActivation) -> Tensor {
        precondition(x.parameters == input, "integer linear exported for input \(input), got \(x.parameters)")
        precondition(x.shape.count == 4 && x.shape[1] == inFeatures && x.shape[2] * x.shape[3] == pooledPositions,
                     "integer linear over \(inFeatures) channels of \(pooledPositions) positions, got \(x.shape)")
        let (n, hw) = (x.shape[0], pooledPositions)
        let outputScale = weightScale.map { $0 * input.scale[0] / Float(hw) }
        var logits = Tensor(uninitializedShape: [n, outFeatures])
        logits.withUnsafeMutableBufferPointer { out in
            var sums = [Int32](repeating: 0, count: inFeatures)
            for b in 0..<n {
                for c in 0..<inFeatures {
                    let base = (b * inFeatures + c) * hw
                    var s: Int32 = 0
                    for p in 0..<hw { s &+= Int32(x.centred[base + p]) }
                    sums[c] = s
                }
                for o in 0..<outFeatures {
                    var acc = bias[o]
                    for c in 0..<inFeatures { acc &+= sums[c] &* centredWeights[o * inFeatures + c] }
                    out[b * outFeatures + o] = Float(acc) * outputScale[o]
                }
            }
        }
        return logits
    }
}
