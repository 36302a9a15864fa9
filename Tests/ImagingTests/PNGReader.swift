import CZlib
import Foundation
import Imaging

/// A minimal PNG reader for checking the encoder independently of it: it parses the chunk
/// structure itself, checks each CRC with zlib, and accepts only what the encoder must produce
/// (8-bit RGB, filter 0 on every row).
struct DecodedPNG {
    struct Chunk {
        let type: String
        let data: [UInt8]
        let storedCRC: UInt32
        let computedCRC: UInt32
    }

    let chunks: [Chunk]
    let width: Int
    let height: Int
    let bitDepth: UInt8
    let colourType: UInt8
    let compressionMethod: UInt8
    let filterMethod: UInt8
    let interlaceMethod: UInt8
    // pixels: [height, width, 3]
    let pixels: [UInt8]
}

struct PNGReadError: Error, CustomStringConvertible {
    let description: String
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

func readPNG(_ data: Data) throws -> DecodedPNG {
    let bytes = [UInt8](data)
    guard bytes.count >= 8, Array(bytes[0..<8]) == pngSignature else { throw PNGReadError(description: "bad signature") }
    func bigEndian(_ at: Int) throws -> UInt32 {
        guard at + 4 <= bytes.count else { throw PNGReadError(description: "truncated at \(at)") }
        return bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    var chunks: [DecodedPNG.Chunk] = []
    var at = 8
    while at < bytes.count {
        let length = Int(try bigEndian(at))
        guard at + 12 + length <= bytes.count else { throw PNGReadError(description: "chunk overruns file") }
        let typeAndData = Array(bytes[at + 4..<at + 8 + length])
        let computed = typeAndData.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        chunks.append(.init(type: String(decoding: typeAndData[0..<4], as: UTF8.self),
                            data: Array(typeAndData[4...]),
                            storedCRC: try bigEndian(at + 8 + length), computedCRC: computed))
        at += 12 + length
    }
    guard let header = chunks.first, header.type == "IHDR", header.data.count == 13 else {
        throw PNGReadError(description: "first chunk is not a 13-byte IHDR")
    }
    let h = header.data
    let width = Int(h[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    let height = Int(h[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    guard h[8] == 8, h[9] == 2 else { throw PNGReadError(description: "reader handles 8-bit RGB only") }

    let compressed = chunks.filter { $0.type == "IDAT" }.flatMap(\.data)
    let rowBytes = 1 + width * 3
    var raw = [UInt8](repeating: 0, count: height * rowBytes)
    var rawLength = uLong(raw.count)
    let status = raw.withUnsafeMutableBufferPointer { dst in
        compressed.withUnsafeBufferPointer { src in
            uncompress(dst.baseAddress, &rawLength, src.baseAddress, uLong(src.count))
        }
    }
    guard status == Z_OK, Int(rawLength) == raw.count else {
        throw PNGReadError(description: "IDAT does not inflate to \(raw.count) bytes (zlib status \(status))")
    }
    var pixels: [UInt8] = []
    for row in 0..<height {
        guard raw[row * rowBytes] == 0 else { throw PNGReadError(description: "row \(row) has filter \(raw[row * rowBytes])") }
        pixels += raw[row * rowBytes + 1..<(row + 1) * rowBytes]
    }
    return DecodedPNG(chunks: chunks, width: width, height: height, bitDepth: h[8], colourType: h[9],
                      compressionMethod: h[10], filterMethod: h[11], interlaceMethod: h[12], pixels: pixels)
}

/// Deterministic noise, so that tests need no random seed and compress badly on purpose.
func noiseBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
}
