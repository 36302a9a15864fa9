/// Integer levels of `bits` bits packed back to back, least significant bits first: level i
/// occupies bits [i * bits, (i + 1) * bits) of the byte stream. This is how an integer model file
/// stores weights, so a 4-bit layer takes an eighth of its float32 size.
public enum BitPacking {
    /// - levels: each in 0..<2^bits. Returns ceil(levels.count * bits / 8) bytes.
    public static func pack(_ levels: [UInt8], bits: Int) -> [UInt8] {
        precondition((1...8).contains(bits), "packing at \(bits) bits")
        var out = [UInt8](repeating: 0, count: byteCount(levels.count, bits: bits))
        var bit = 0
        for v in levels {
            precondition(Int(v) < 1 << bits, "level \(v) does not fit \(bits) bits")
            // A level spans at most two bytes.
            let (byte, shift) = (bit >> 3, bit & 7)
            let wide = UInt16(v) << UInt16(shift)
            out[byte] |= UInt8(truncatingIfNeeded: wide)
            if shift + bits > 8 { out[byte + 1] |= UInt8(truncatingIfNeeded: wide >> 8) }
            bit += bits
        }
        return out
    }

    /// The inverse of `pack`: `count` levels of `bits` bits from `bytes`.
    public static func unpack(_ bytes: [UInt8], bits: Int, count: Int) -> [UInt8] {
        precondition((1...8).contains(bits), "unpacking at \(bits) bits")
        precondition(bytes.count == byteCount(count, bits: bits), "\(bytes.count) bytes for \(count) levels of \(bits) bits")
        let mask = UInt16(1 << bits - 1)
        var out = [UInt8](repeating: 0, count: count)
        var bit = 0
        for i in 0..<count {
            let (byte, shift) = (bit >> 3, bit & 7)
            var wide = UInt16(bytes[byte])
            if shift + bits > 8 { wide |= UInt16(bytes[byte + 1]) << 8 }
            out[i] = UInt8((wide >> UInt16(shift)) & mask)
            bit += bits
        }
        return out
    }

    public static func byteCount(_ count: Int, bits: Int) -> Int { (count * bits + 7) / 8 }
}
