/// Element types of the safetensors format that this reader accepts. Every type is held in memory
/// as float32; the file's type is remembered so that a rewrite keeps it (e.g. PyTorch's I64
/// `num_batches_tracked` stays I64).
public enum DType: String, CaseIterable, Sendable {
    case f32 = "F32", f64 = "F64", f16 = "F16", bf16 = "BF16", i64 = "I64", i32 = "I32", u8 = "U8"

    public var byteSize: Int {
        switch self {
        case .u8: return 1
        case .f16, .bf16: return 2
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        }
    }

    /// Converts `dst.count` little-endian elements of this type from `src` to float32. Integers
    /// beyond 2^24 lose precision, which is acceptable for the counters and labels stored as such.
    func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .f32: load(src, dst) { (x: UInt32) in Float(bitPattern: x) }
        case .f64: load(src, dst) { (x: UInt64) in Float(Double(bitPattern: x)) }
        case .f16: load(src, dst) { (x: UInt16) in halfToFloat(x) }
        case .bf16: load(src, dst) { (x: UInt16) in Float(bitPattern: UInt32(x) << 16) }
        case .i64: load(src, dst) { (x: Int64) in Float(x) }
        case .i32: load(src, dst) { (x: Int32) in Float(x) }
        case .u8: load(src, dst) { (x: UInt8) in Float(x) }
        }
    }

    /// Converts float32 elements to this type, little-endian, into `dst`. Integer types refuse
    /// values they cannot hold exactly rather than silently rounding them.
    func encode(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawBufferPointer,
                tensor: String, file: String) throws {
        func exact<T: BinaryInteger>(_ v: Float, _ convert: (Float) -> T?) throws -> T {
            guard let x = convert(v) else {
                throw SafetensorsError.notRepresentable(file: file, tensor: tensor, dtype: self, value: v)
            }
            return x
        }
        switch self {
        case .f32: store(src, dst) { $0.bitPattern }
        case .f64: store(src, dst) { Double($0).bitPattern }
        case .f16: store(src, dst) { floatToHalf($0) }
        case .bf16: store(src, dst) { floatToBFloat($0) }
        case .i64: try store(src, dst) { try exact($0, Int64.init(exactly:)) }
        case .i32: try store(src, dst) { try exact($0, Int32.init(exactly:)) }
        case .u8: try store(src, dst) { try exact($0, UInt8.init(exactly:)) }
        }
    }
}

@inline(__always)
private func load<T: FixedWidthInteger>(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableBufferPointer<Float>,
                                        _ convert: (T) -> Float) {
    // The data buffer gives no alignment guarantee (a U8 tensor may precede an F32 one).
    for i in 0..<dst.count {
        dst[i] = convert(T(littleEndian: src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)))
    }
}

@inline(__always)
private func store<T: FixedWidthInteger>(_ src: UnsafeBufferPointer<Float>, _ dst: UnsafeMutableRawBufferPointer,
                                         _ convert: (Float) throws -> T) rethrows {
    for i in 0..<src.count {
        dst.storeBytes(of: try convert(src[i]).littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self)
    }
}

// Half-precision conversions by bit manipulation, because `Float16` is unavailable on x86_64 macOS.

func halfToFloat(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 == 0 ? 1 : -1
    let exponent = UInt32(h >> 10) & 0x1F, mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0: return sign * Float(mantissa) * 0x1p-24
    case 0x1F: return Float(bitPattern: UInt32(h & 0x8000) << 16 | 0x7F80_0000 | mantissa << 13)
    default: return Float(bitPattern: UInt32(h & 0x8000) << 16 | (exponent + 112) << 23 | mantissa << 13)
    }
}

/// Rounds to nearest, ties to even, as PyTorch's `.half()` does.
func floatToHalf(_ f: Float) -> UInt16 {
    let sign = UInt16(truncatingIfNeeded: f.bitPattern >> 16) & 0x8000
    let a = f.magnitude
    if a.isNaN { return sign | 0x7E00 }
    if a >= 65520 { return sign | 0x7C00 }
    // Below the smallest normal half the quantum is 2^-24; a carry into 0x400 is the correct normal.
    if a < 0x1p-14 { return sign | UInt16((a * 0x1p24).rounded(.toNearestOrEven)) }
    let rebased = a.bitPattern - (112 << 23)
    return sign | UInt16(truncatingIfNeeded: (rebased + 0xFFF + ((rebased >> 13) & 1)) >> 13)
}

func floatToBFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
}
