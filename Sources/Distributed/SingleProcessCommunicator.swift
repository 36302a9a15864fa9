import Foundation

/// A job of one process: every collective is the identity. Runs data-parallel code without MPI
/// (tests, single-machine runs started without `mpirun`).
public final class SingleProcessCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {}

    public func startAllReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingOperation {
        CompletedOperation()
    }

    public func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        precondition(root == 0, "broadcast from rank \(root) in a single-process job")
    }

    public func allGather<T: CommunicatorScalar>(_ values: [T]) throws -> [[T]] { [values] }

    public func barrier() throws {}

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data("acq-dist: error: \(message)\n".utf8))
        exit(1)
    }
}

/// An operation that was complete when it started.
final class CompletedOperation: PendingOperation {
    func test() throws -> Bool { true }
    func wait() throws {}
}
