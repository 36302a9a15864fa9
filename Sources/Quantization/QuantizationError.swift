/// What can be wrong with a quantization request or a quantized model; each case is one line
/// that names the option, model, file or tensor at fault.
public enum QuantizationError: Error, CustomStringConvertible, Equatable {
    /// A bit width outside 2...8 (`option` is the command-line or config name that set it).
    case bitsOutOfRange(option: String, bits: Int)
    /// A scheme that cannot be used where it was asked for (e.g. per-channel activations).
    case unsupportedScheme(option: String, scheme: String, reason: String)
    case badOption(option: String, value: String, reason: String)
    /// The model has no layer that quantization applies to.
    case noQuantizableLayer(model: String)
    /// The model has convolutions, but no quantized student exists for its architecture.
    case unsupportedArchitecture(model: String)
    /// Activation quantizers that were never calibrated, so they have no range.
    case uncalibrated(model: String, quantizers: [String])
    /// A model file whose quantization metadata is absent or unreadable.
    case badMetadata(file: String, key: String, reason: String)
    /// A tensor of an integer model file that cannot be what it claims to be.
    case badTensor(file: String, tensor: String, reason: String)
    /// A layer that cannot be exported to integers (the reason says why).
    case notExportable(layer: String, reason: String)

    public var description: String {
        switch self {
        case let .bitsOutOfRange(option, bits):
            return "\(option) \(bits): bit widths must be 2 to 8"
        case let .unsupportedScheme(option, scheme, reason):
            return "\(option) \(scheme): \(reason)"
        case let .badOption(option, value, reason):
            return "\(option) \(value): \(reason)"
        case let .noQuantizableLayer(model):
            return "\(model) has no quantizable layer (no Conv2d or Linear): there is nothing to quantize"
        case let .unsupportedArchitecture(model):
            return "\(model): only the ResNet family can be converted to a quantized student"
        case let .uncalibrated(model, quantizers):
            let head = quantizers.prefix(4).joined(separator: ", ")
            return "\(model): activation quantizer(s) \(head)\(quantizers.count > 4 ? ", ..." : "") have no range yet; calibrate them first (quantize --method ptq or qat)"
        case let .badMetadata(file, key, reason):
            return "\(file): metadata '\(key)' \(reason)"
        case let .badTensor(file, tensor, reason):
            return "\(file): tensor '\(tensor)' \(reason)"
        case let .notExportable(layer, reason):
            return "cannot export layer '\(layer)' to integers: \(reason)"
        }
    }
}
