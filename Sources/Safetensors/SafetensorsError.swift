/// A safetensors file that cannot be read or written, or a lookup that fails. Every case names the
/// file (and the tensor, where one is involved) so that the one-line message is enough to act on.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileMissing(file: String)
    case unreadable(file: String, reason: String)
    /// The file ends before the header or the data it declares.
    case truncated(file: String, detail: String)
    case malformedHeader(file: String, detail: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// `data_offsets` do not match the byte size implied by shape and dtype, or overlap another tensor.
    case inconsistentOffsets(file: String, tensor: String, detail: String)
    case missingTensor(file: String, tensor: String, suggestions: [String])
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    /// A value cannot be stored exactly in the tensor's integer dtype.
    case notRepresentable(file: String, tensor: String, dtype: DType, value: Float)
    case writeFailed(file: String, reason: String)

    public var file: String {
        switch self {
        case let .fileMissing(file), let .unreadable(file, _), let .truncated(file, _),
             let .malformedHeader(file, _), let .unsupportedDType(file, _, _),
             let .inconsistentOffsets(file, _, _), let .missingTensor(file, _, _),
             let .shapeMismatch(file, _, _, _), let .notRepresentable(file, _, _, _), let .writeFailed(file, _):
            return file
        }
    }

    public var description: String {
        switch self {
        case let .fileMissing(file):
            return "safetensors file not found: \(file)"
        case let .unreadable(file, reason):
            return "cannot read safetensors file \(file): \(reason)"
        case let .truncated(file, detail):
            return "\(file): truncated: \(detail)"
        case let .malformedHeader(file, detail):
            return "\(file): malformed header: \(detail)"
        case let .unsupportedDType(file, tensor, dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(file): tensor '\(tensor)' has unsupported dtype '\(dtype)' (supported: \(known))"
        case let .inconsistentOffsets(file, tensor, detail):
            return "\(file): tensor '\(tensor)': \(detail)"
        case let .missingTensor(file, tensor, suggestions):
            let hint = suggestions.isEmpty ? ""
                : " (did you mean \(suggestions.map { "'\($0)'" }.joined(separator: ", "))?)"
            return "\(file): no tensor '\(tensor)'\(hint)"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .notRepresentable(file, tensor, dtype, value):
            return "\(file): tensor '\(tensor)': value \(value) cannot be stored exactly as \(dtype.rawValue)"
        case let .writeFailed(file, reason):
            return "cannot write safetensors file \(file): \(reason)"
        }
    }
}
