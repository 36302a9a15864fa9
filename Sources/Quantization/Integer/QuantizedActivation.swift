import TensorCore

/// A tensor held as integer levels of a per-tensor quantizer, what flows between the integer
/// model's layers. Stored centred, q - zeroPoint, the operand form of the integer products.
public struct QuantizedActivation {
    public let centred: [Int16]
    public let shape: [Int]
    public let parameters: QuantizationParameters

    /// x quantized by `parameters` (per tensor, at most 15 bits).
    public init(quantizing x: Tensor, with parameters: QuantizationParameters) {
        (centred, shape, self.parameters) = (parameters.centredLevels(x), x.shape, parameters)
    }

    /// (q - zeroPoint) * scale: the float value the levels stand for.
    public func dequantized() -> Tensor {
        let s = parameters.scale[0]
        return Tensor(shape: shape, scalars: centred.map { Float($0) * s })
    }
}
