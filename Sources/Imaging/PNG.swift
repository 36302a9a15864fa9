import CZlib
import Foundation

/// A PNG file that could not be written; the description is one line naming the file.
public struct ImageWriteError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "cannot write \(path): \(reason)" }
}

/// Encodes an `RGBImage` as a PNG: 8-bit truecolour, no interlacing, every row with filter 0
/// (the images are plots and upscaled samples, which compress well without prediction).
public enum PNGEncoder {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Readers accept any split of the zlib stream into IDAT chunks; bounded chunks keep
    /// every length far from the format's 2^31 - 1 limit.
    static let maxIDATLength = 1 << 20

    public static func encode(_ image: RGBImage) -> Data {
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(image.width))
        header.appendBigEndian(UInt32(image.height))
        // bit depth 8, colour type 2 (RGB), compression 0, filter method 0, no interlace
        header += [8, 2, 0, 0, 0]

        var out = signature
        appendChunk("IHDR", header[...], to: &out)
        let compressed = zlibCompress(filteredRows(image))
        var start = 0
        repeat {
            let end = min(start + maxIDATLength, compressed.count)
            appendChunk("IDAT", compressed[start..<end], to: &out)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [UInt8]()[...], to: &out)
        return Data(out)
    }

    // rows: [height, 1 + width * 3], each row led by its filter type byte (0 = none)
    private static func filteredRows(_ image: RGBImage) -> [UInt8] {
        let rowBytes = image.width * 3
        var raw = [UInt8]()
        raw.reserveCapacity(image.height * (rowBytes + 1))
        for row in 0..<image.height {
            raw.append(0)
            raw.append(contentsOf: image.pixels[row * rowBytes..<(row + 1) * rowBytes])
        }
        return raw
    }

    private static func zlibCompress(_ input: [UInt8]) -> [UInt8] {
        var length = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(length))
        let status = output.withUnsafeMutableBufferPointer { dst in
            input.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress, &length, src.baseAddress, uLong(src.count), Z_DEFAULT_COMPRESSION)
            }
        }
        // compressBound makes the buffer large enough, so only an allocation failure is left.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        output.removeSubrange(Int(length)...)
        return output
    }

    /// length, type, data, and the CRC-32 of type and data.
    private static func appendChunk(_ type: String, _ data: ArraySlice<UInt8>, to out: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        out.appendBigEndian(UInt32(data.count))
        let crcStart = out.count
        out += typeBytes
        out += data
        let crc = out[crcStart...].withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        out.appendBigEndian(UInt32(crc))
    }
}

extension RGBImage {
    public func pngData() -> Data {
        PNGEncoder.encode(self)
    }

    /// Writes the PNG through a temporary file in the same directory and renames it, so a
    /// viewer refreshing a plot during a run never sees half a file.
    public func write(to url: URL) throws {
        guard url.isFileURL else {
            throw ImageWriteError(path: url.absoluteString, reason: "not a file URL")
        }
        let path = url.path
        let data = pngData()
        let temporary = path + ".tmp-\(getpid())"
        guard let file = fopen(temporary, "wb") else {
            throw ImageWriteError(path: path, reason: String(cString: strerror(errno)))
        }
        let written = data.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let writeErrno = errno
        let closed = fclose(file)
        let closeErrno = errno
        guard written == data.count, closed == 0 else {
            unlink(temporary)
            let code = written != data.count ? writeErrno : closeErrno
            throw ImageWriteError(path: path, reason: String(cString: strerror(code)))
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ImageWriteError(path: path, reason: reason)
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xFF),
                            UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }
}
