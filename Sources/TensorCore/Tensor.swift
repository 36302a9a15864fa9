import Foundation

/// Heap memory for tensors: one float32 allocation, shared between tensor values until one of
/// them writes (copy-on-write, see `Tensor.withUnsafeMutableBufferPointer`).
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
    }

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { pointer.deallocate() }
}

/// A dense float32 tensor in row-major (C) order.
///
/// A value type: copies share storage until one of them is written to. A tensor may be a view
/// of a range of a larger storage (`offset`), which is how parameters live in one flat arena.
public struct Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage
    @usableFromInline var offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        let n = shape.reduce(1, *)
        storage = TensorStorage(count: n)
        storage.pointer.initialize(repeating: value, count: n)
        offset = 0
    }

    /// A tensor of `shape` holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        let n = shape.reduce(1, *)
        precondition(n == scalars.count, "shape \(shape) needs \(n) values, got \(scalars.count)")
        self.shape = shape
        let fresh = TensorStorage(count: n)
        scalars.withUnsafeBufferPointer { fresh.pointer.initialize(from: $0.baseAddress!, count: n) }
        storage = fresh
        offset = 0
    }

    /// A tensor of `shape` with uninitialised contents, for kernels that write every element.
    public init(uninitializedShape shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(count: shape.reduce(1, *))
        offset = 0
    }

    /// A view of `shape.product` elements of `storage` starting at `offset` (no copy).
    public init(viewOf storage: TensorStorage, offset: Int, shape: [Int]) {
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= storage.count,
                     "view [\(offset), +\(shape.reduce(1, *))) outside storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    public static func scalar(_ v: Float) -> Tensor { Tensor(shape: [], scalars: [v]) }

    public var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item of a tensor with shape \(shape)")
        return storage.pointer[offset]
    }

    public subscript(flat i: Int) -> Float {
        get {
            precondition(i >= 0 && i < count, "index \(i) outside \(shape)")
            return storage.pointer[offset + i]
        }
        set {
            precondition(i >= 0 && i < count, "index \(i) outside \(shape)")
            withUnsafeMutableBufferPointer { $0[i] = newValue }
        }
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Write access; copies the elements first when the storage is shared (copy-on-write).
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        let n = count
        if !isKnownUniquelyReferenced(&storage) || offset != 0 || storage.count != n {
            let fresh = TensorStorage(count: n)
            fresh.pointer.initialize(from: storage.pointer + offset, count: n)
            storage = fresh
            offset = 0
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: n))
    }

    /// The same elements under another shape with equal element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != k }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[k] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = s
        return t
    }

    /// Identity of the memory behind this tensor (views of one buffer share it).
    public var storageIdentity: ObjectIdentifier { ObjectIdentifier(storage) }
    /// Bytes of the whole buffer behind this tensor.
    public var storageBytes: Int { storage.count * MemoryLayout<Float>.stride }

    /// Whether two tensors are views of the same memory (used by the parameter arena).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}

extension Tensor {
    /// Copies `source`'s elements into this tensor's memory *without* copy-on-write: every
    /// tensor sharing the storage sees the new values. This is what a parameter arena wants
    /// (layers, optimizer and arena share one buffer); nothing else should call it.
    public func writeThrough(_ source: Tensor) {
        precondition(source.count == count, "writeThrough: \(source.shape) into \(shape)")
        source.withUnsafeBufferPointer { s in
            (storage.pointer + offset).update(from: s.baseAddress!, count: count)
        }
    }

    /// Raw access to this tensor's memory without copy-on-write (see `writeThrough`).
    public func withSharedMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: storage.pointer + offset, count: count))
    }
}
