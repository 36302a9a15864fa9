import TensorCore

// Integer tensors hold values that float32 cannot represent beyond 2^24 (an int32 bias of an
// integer model, an int64 counter). A file keeps their exact values beside the float32 view that
// every tensor has: the reader fills them for integer dtypes, `setIntegers` sets them, and the
// writer stores them as they are.

extension DType {
    public var isInteger: Bool { self == .i64 || self == .i32 || self == .u8 }

    /// The range of values this integer type holds.
    var integerRange: ClosedRange<Int64> {
        switch self {
        case .u8: return 0...Int64(UInt8.max)
        case .i32: return Int64(Int32.min)...Int64(Int32.max)
        default: return Int64.min...Int64.max
        }
    }

    /// Little-endian integers of this type from `src`, exactly.
    func decodeIntegers(_ src: UnsafeRawBufferPointer, count: Int) -> [Int64] {
        (0..<count).map { i in
            switch self {
            case .u8: return Int64(src[i])
            case .i32: return Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            default: return Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
            }
        }
    }

    /// Stores `values` as this integer type, little-endian, into `dst`; a value out of range is an error.
    func encodeIntegers(_ values: [Int64], into dst: UnsafeMutableRawBufferPointer, tensor: String, file: String) throws {
        for (i, v) in values.enumerated() {
            guard integerRange.contains(v) else {
                throw SafetensorsError.notRepresentable(file: file, tensor: tensor, dtype: self, value: Float(v))
            }
            switch self {
            case .u8: dst[i] = UInt8(v)
            case .i32: dst.storeBytes(of: Int32(v).littleEndian, toByteOffset: 4 * i, as: Int32.self)
            default: dst.storeBytes(of: v.littleEndian, toByteOffset: 8 * i, as: Int64.self)
            }
        }
    }
}

extension SafetensorsFile {
    /// Adds (or replaces) an integer tensor with exact values; its float32 view is the nearest floats.
    public mutating func setIntegers(_ name: String, _ values: [Int64], shape: [Int], dtype: DType) {
        precondition(dtype.isInteger, "setIntegers with dtype \(dtype.rawValue)")
        set(name, Tensor(shape: shape, scalars: values.map(Float.init)), dtype: dtype)
        exactIntegers[name] = values
    }

    /// The exact values of an integer tensor (read from a file or set with `setIntegers`); a
    /// missing tensor, or one of a float dtype, is an error naming the file and the tensor.
    public func integers(_ name: String, shape: [Int]) throws -> [Int64] {
        _ = try tensor(name, shape: shape)
        guard let values = exactIntegers[name] else {
            throw SafetensorsError.unsupportedDType(file: source, tensor: name, dtype: (dtypes[name] ?? .f32).rawValue + " (an integer dtype is needed)")
        }
        return values
    }
}
