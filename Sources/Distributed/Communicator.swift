/// The processes of one job and the collective operations between them.
///
/// Library code receives a communicator as a value and never reaches for global MPI state:
/// `SingleProcessCommunicator` runs the same code without MPI (tests, plain runs), and
/// `MPICommunicator` runs it under `mpirun`. Every collective must be called by every rank, in
/// the same order, with the same element counts (except `allGather`, whose counts may differ).
public protocol Communicator: AnyObject {
    /// This process's index, 0..<size.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }

    /// Element-wise sum over all ranks, in place; every rank receives the sum.
    func allReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws

    /// Starts the same sum and returns at once. `buffer` must stay allocated and untouched until
    /// the returned operation has completed.
    func startAllReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingOperation

    /// Overwrites `buffer` on every rank with `root`'s.
    func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws

    /// Every rank's `values` in rank order; the lengths may differ between ranks.
    func allGather<T: CommunicatorScalar>(_ values: [T]) throws -> [[T]]

    /// Returns once every rank has called it.
    func barrier() throws

    /// Writes `message` as one line to standard error and ends every process of the job: for
    /// failures after which the other ranks would wait forever in their next collective.
    func abort(_ message: String) -> Never
}

/// A non-blocking collective in flight.
public protocol PendingOperation: AnyObject {
    /// Whether it has completed. Calling it also lets MPI progress the operation, which OpenMPI
    /// does only inside MPI calls.
    func test() throws -> Bool
    /// Blocks until it has completed.
    func wait() throws
}

/// Element types a communicator moves and sums.
public protocol CommunicatorScalar: Numeric {
    static var communicatorKind: CommunicatorScalarKind { get }
}

public enum CommunicatorScalarKind: Sendable {
    case float32, float64, int64, uint8
}

extension Float: CommunicatorScalar { public static var communicatorKind: CommunicatorScalarKind { .float32 } }
extension Double: CommunicatorScalar { public static var communicatorKind: CommunicatorScalarKind { .float64 } }
extension Int64: CommunicatorScalar { public static var communicatorKind: CommunicatorScalarKind { .int64 } }
extension UInt8: CommunicatorScalar { public static var communicatorKind: CommunicatorScalarKind { .uint8 } }

extension Communicator {
    /// `allReduceSum` on an array.
    public func allReduceSum<T: CommunicatorScalar>(_ values: inout [T]) throws {
        try values.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    }

    /// `broadcast` on an array; every rank must pass an array of root's length.
    public func broadcast<T: CommunicatorScalar>(_ values: inout [T], root: Int = 0) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// `root`'s bytes on every rank, whatever length the others passed.
    public func broadcastBytes(_ bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        var length = [Int64(bytes.count)]
        try broadcast(&length, root: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length[0]))
        try broadcast(&out, root: root)
        return out
    }
}
