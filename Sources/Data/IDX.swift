/// The IDX format of (Fashion-)MNIST: a big-endian magic word whose low byte is the number of
/// dimensions, one big-endian UInt32 per dimension, then the unsigned bytes in row-major order.
/// Files may be gzip-compressed or plain; `GzipFile.read` handles both.
public enum IDX {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// Raw images as stored on disk.
    public struct Images: Sendable {
        public let count: Int
        public let rows: Int
        public let columns: Int
        /// pixels: [count, rows, columns], 0...255
        public let pixels: [UInt8]
    }

    public static func readImages(path: String) throws -> Images {
        let (dims, payload) = try parse(try GzipFile.read(path: path), magic: imagesMagic, path: path)
        guard dims[1] > 0, dims[2] > 0 else {
            throw DatasetError.badHeader(path: path, reason: "image size \(dims[1])x\(dims[2])")
        }
        return Images(count: dims[0], rows: dims[1], columns: dims[2], pixels: payload)
    }

    /// labels: [count]
    public static func readLabels(path: String) throws -> [UInt8] {
        try parse(try GzipFile.read(path: path), magic: labelsMagic, path: path).payload
    }

    /// The IDX bytes of `pixels` ([count, rows, columns]); for tests and tools.
    public static func encode(images pixels: [UInt8], count: Int, rows: Int, columns: Int) -> [UInt8] {
        precondition(pixels.count == count * rows * columns, "\(pixels.count) pixels for \(count)x\(rows)x\(columns)")
        return header(magic: imagesMagic, dims: [count, rows, columns]) + pixels
    }

    /// The IDX bytes of `labels` ([count]); for tests and tools.
    public static func encode(labels: [UInt8]) -> [UInt8] {
        header(magic: labelsMagic, dims: [labels.count]) + labels
    }

    private static func header(magic: UInt32, dims: [Int]) -> [UInt8] {
        ([magic] + dims.map { UInt32($0) }).flatMap { bigEndianBytes($0) }
    }

    private static func bigEndianBytes(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    private static func word(_ bytes: [UInt8], at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }

    /// Checks magic, header and payload length; returns the dimensions and the payload bytes.
    private static func parse(_ bytes: [UInt8], magic: UInt32, path: String) throws -> (dims: [Int], payload: [UInt8]) {
        guard bytes.count >= 4 else {
            throw DatasetError.badHeader(path: path, reason: "file is \(bytes.count) bytes, too short for an IDX header")
        }
        let found = word(bytes, at: 0)
        guard found == magic else { throw DatasetError.badMagic(path: path, expected: magic, found: found) }
        let rank = Int(magic & 0xFF)
        let headerLength = 4 + 4 * rank
        guard bytes.count >= headerLength else {
            throw DatasetError.badHeader(path: path,
                                         reason: "file is \(bytes.count) bytes, header needs \(headerLength)")
        }
        let dims = (0..<rank).map { Int(word(bytes, at: 4 + 4 * $0)) }
        // Each dimension is below 2^32, so the product of three fits in Int only after checking.
        var expected = 1
        for d in dims {
            let (p, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow else { throw DatasetError.badHeader(path: path, reason: "dimensions \(dims) overflow") }
            expected = p
        }
        let payloadLength = bytes.count - headerLength
        guard payloadLength == expected else {
            throw DatasetError.payloadLength(path: path, expected: expected, found: payloadLength)
        }
        return (dims, Array(bytes[headerLength...]))
    }
}
