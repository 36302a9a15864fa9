import Foundation
import Safetensors
import TensorCore

/// Runs `body` in a fresh directory under the system temporary directory and removes it afterwards.
func withScratchDirectory<R>(_ body: (URL) throws -> R) throws -> R {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("SafetensorsTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// A file assembled byte by byte, so the reader is tested independently of the writer.
func rawFile(header: String, data: [UInt8] = []) -> Data {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) } + Data(json) + Data(data)
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
}

/// The case name of an error, e.g. "truncated", so tests need not spell out associated values.
func caseName(_ error: SafetensorsError?) -> String? {
    error.flatMap { Mirror(reflecting: $0).children.first?.label }
}

/// A small valid file with two F32 tensors: "layer.weight" [2, 3] and "layer.bias" [3].
func sampleFile() -> SafetensorsFile {
    var file = SafetensorsFile(metadata: ["epoch": "3"])
    file.set("layer.weight", Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
    file.set("layer.bias", Tensor(shape: [3], scalars: [-1, 0, 1]))
    return file
}
