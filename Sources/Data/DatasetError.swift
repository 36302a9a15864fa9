/// A dataset file that cannot be used. Every case names the file so that the one-line message
/// is enough to fix the problem without a debugger.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file does not exist; `hint` says how to obtain it.
    case missingFile(path: String, hint: String)
    /// The file exists but could not be read or decompressed.
    case unreadable(path: String, reason: String)
    case badMagic(path: String, expected: UInt32, found: UInt32)
    /// The header is present but describes something this reader does not accept.
    case badHeader(path: String, reason: String)
    /// The bytes after the header are not exactly what the header promises.
    case payloadLength(path: String, expected: Int, found: Int)
    /// The content is well formed but inconsistent (e.g. a label out of range).
    case invalidContent(path: String, reason: String)

    public var path: String {
        switch self {
        case let .missingFile(path, _), let .unreadable(path, _), let .badMagic(path, _, _),
             let .badHeader(path, _), let .payloadLength(path, _, _), let .invalidContent(path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .missingFile(path, hint):
            return "dataset file not found: \(path)" + (hint.isEmpty ? "" : "; \(hint)")
        case let .unreadable(path, reason):
            return "cannot read dataset file \(path): \(reason)"
        case let .badMagic(path, expected, found):
            return "\(path): bad IDX magic \(hex(found)), expected \(hex(expected))"
        case let .badHeader(path, reason):
            return "\(path): bad header: \(reason)"
        case let .payloadLength(path, expected, found):
            return "\(path): payload is \(found) bytes but the header promises \(expected)"
                + (found < expected ? " (file truncated?)" : "")
        case let .invalidContent(path, reason):
            return "\(path): \(reason)"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let digits = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
