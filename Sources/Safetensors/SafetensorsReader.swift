import Foundation
import TensorCore

extension SafetensorsFile {
    /// Larger headers are corruption, not data; the reference implementation uses the same cap.
    static let maxHeaderLength = 100_000_000

    public static func read(contentsOf url: URL) throws -> SafetensorsFile {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw SafetensorsError.fileMissing(file: path) }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafetensorsError.unreadable(file: path, reason: error.localizedDescription)
        }
        return try SafetensorsFile(data: data, source: path)
    }

    /// Parses a whole file's bytes; `source` names the file in error messages.
    public init(data: Data, source: String) throws {
        self.init(source: source)
        try data.withUnsafeBytes { try parse($0) }
    }

    private mutating func parse(_ bytes: UnsafeRawBufferPointer) throws {
        let file = source
        guard bytes.count >= 8 else {
            throw SafetensorsError.truncated(
                file: file, detail: "\(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(bytes.count - 8) else {
            throw SafetensorsError.truncated(
                file: file, detail: "header length \(declared) exceeds the \(bytes.count - 8) bytes that follow it")
        }
        let headerLength = Int(declared)
        guard (2...Self.maxHeaderLength).contains(headerLength) else {
            throw SafetensorsError.malformedHeader(file: file, detail: "implausible header length \(headerLength)")
        }
        let json = Data(bytes[8..<8 + headerLength])
        let header: RawHeader
        do {
            header = try JSONDecoder().decode(RawHeader.self, from: json)
        } catch {
            throw SafetensorsError.malformedHeader(file: file, detail: describe(error, json: json))
        }
        let buffer = UnsafeRawBufferPointer(rebasing: bytes[(8 + headerLength)...])

        let entries = try header.entries.map { try Entry(validating: $0.entry, name: $0.name, file: file,
                                                         bufferSize: buffer.count) }
            .sorted { ($0.range.lowerBound, $0.name) < ($1.range.lowerBound, $1.name) }
        var previous: Entry?
        for entry in entries where !entry.range.isEmpty {
            if let p = previous, entry.range.lowerBound < p.range.upperBound {
                throw SafetensorsError.inconsistentOffsets(
                    file: file, tensor: entry.name,
                    detail: "data_offsets \(entry.range) overlap those of '\(p.name)' \(p.range)")
            }
            previous = entry
        }

        metadata = header.metadata
        for entry in entries {
            var tensor = Tensor(uninitializedShape: entry.shape)
            tensor.withUnsafeMutableBufferPointer {
                entry.dtype.decode(UnsafeRawBufferPointer(rebasing: buffer[entry.range]), into: $0)
            }
            set(entry.name, tensor, dtype: entry.dtype)
            if entry.dtype.isInteger {
                exactIntegers[entry.name] = entry.dtype.decodeIntegers(UnsafeRawBufferPointer(rebasing: buffer[entry.range]),
                                                                       count: tensor.count)
            }
        }
    }
}

/// A header entry whose dtype, shape and offsets have been checked against each other and the buffer.
private struct Entry {
    let name: String
    let dtype: DType
    let shape: [Int]
    let range: Range<Int>

    init(validating raw: RawEntry, name: String, file: String, bufferSize: Int) throws {
        guard let dtype = DType(rawValue: raw.dtype) else {
            throw SafetensorsError.unsupportedDType(file: file, tensor: name, dtype: raw.dtype)
        }
        guard raw.shape.allSatisfy({ $0 >= 0 }) else {
            throw SafetensorsError.malformedHeader(file: file, detail: "tensor '\(name)' has shape \(raw.shape)")
        }
        var bytes = dtype.byteSize, overflow = false
        for d in raw.shape where !overflow { (bytes, overflow) = bytes.multipliedReportingOverflow(by: d) }
        guard !overflow else {
            throw SafetensorsError.inconsistentOffsets(
                file: file, tensor: name, detail: "shape \(raw.shape) is too large")
        }
        let offsets = raw.data_offsets
        guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw SafetensorsError.inconsistentOffsets(
                file: file, tensor: name, detail: "data_offsets \(offsets) are not [begin, end] with 0 <= begin <= end")
        }
        guard offsets[1] - offsets[0] == bytes else {
            throw SafetensorsError.inconsistentOffsets(
                file: file, tensor: name,
                detail: "data_offsets \(offsets) span \(offsets[1] - offsets[0]) bytes but shape \(raw.shape) of "
                    + "\(dtype.rawValue) needs \(bytes)")
        }
        guard offsets[1] <= bufferSize else {
            throw SafetensorsError.truncated(
                file: file, detail: "tensor '\(name)' needs data bytes \(offsets[0])..<\(offsets[1]) "
                    + "but the data buffer holds only \(bufferSize)")
        }
        self.name = name
        self.dtype = dtype
        self.shape = raw.shape
        range = offsets[0]..<offsets[1]
    }
}

private struct RawEntry: Decodable {
    let dtype: String
    let shape: [Int]
    let data_offsets: [Int]
}

/// The header object: tensor names are dynamic keys beside the reserved `__metadata__`.
private struct RawHeader: Decodable {
    var metadata: [String: String] = [:]
    var entries: [(name: String, entry: RawEntry)] = []

    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try container.decode(RawEntry.self, forKey: key)))
            }
        }
    }
}

/// One line instead of Foundation's multi-line dumps, with the JSON path that failed.
private func describe(_ error: Error, json: Data) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func at(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.enumerated().map { i, key in
            key.intValue.map { "[\($0)]" } ?? (i == 0 ? "'\(key.stringValue)'" : ".\(key.stringValue)")
        }.joined()
        return path.isEmpty ? "" : " at \(path)"
    }
    switch error {
    case let .keyNotFound(key, context):
        return "missing key '\(key.stringValue)'\(at(context))"
    case let .typeMismatch(type, context), let .valueNotFound(type, context):
        let name = "\(type)"
        let json = name.hasPrefix("Array") ? "an array" : name.hasPrefix("Dictionary") ? "an object"
            : name == "String" ? "a string" : name == "Int" ? "an integer" : name
        return "expected \(json)\(at(context))"
    case let .dataCorrupted(context) where context.codingPath.isEmpty:
        // JSONDecoder does not say where the syntax error is; JSONSerialization does.
        do {
            _ = try JSONSerialization.jsonObject(with: json)
        } catch {
            return "not valid JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error)"
        }
        // Valid JSON rejected without a path: JSONDecoder reports a fractional or huge integer this way.
        return "a number in shape or data_offsets is not an integer that fits in Int"
    case let .dataCorrupted(context):
        return "\(context.debugDescription)\(at(context))"
    @unknown default:
        return "\(error)"
    }
}
