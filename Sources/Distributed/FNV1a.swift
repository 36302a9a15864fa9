/// 64-bit FNV-1a: a fingerprint to compare configurations and layouts between ranks (not a
/// defence against tampering).
public struct FNV1a {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes {
            value ^= UInt64(b)
            value = value &* 0x0000_0100_0000_01b3
        }
    }

    public mutating func add(_ word: UInt64) {
        withUnsafeBytes(of: word.littleEndian) { add(bytes: $0) }
    }
}
