import CZlib
import Foundation

/// zlib's CRC-32 of a byte buffer: catches every flipped byte and every truncation of a shard.
func crc32(of data: Data) -> UInt32 {
    data.withUnsafeBytes { raw -> UInt32 in
        var crc = CZlib.crc32(0, nil, 0)
        var offset = 0
        // zlib takes a 32-bit length: feed large buffers in chunks.
        while offset < raw.count {
            let n = min(raw.count - offset, 1 << 30)
            crc = CZlib.crc32(crc, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(n))
            offset += n
        }
        return UInt32(crc)
    }
}
