import Dispatch

/// A communicator that measures the wall time spent inside communication calls (blocking
/// collectives, starting and testing non-blocking ones, waiting for them): the share of a step
/// the ranks spend communicating or waiting for each other.
public final class TimedCommunicator: Communicator {
    public let inner: any Communicator
    /// Seconds spent in communication calls since the last `reset`.
    public private(set) var seconds: Double = 0

    public init(_ inner: any Communicator) { self.inner = inner }

    public var rank: Int { inner.rank }
    public var size: Int { inner.size }

    public func reset() { seconds = 0 }

    func timed<R>(_ body: () throws -> R) rethrows -> R {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    public func allReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {
        try timed { try inner.allReduceSum(buffer) }
    }

    public func startAllReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingOperation {
        TimedOperation(try timed { try inner.startAllReduceSum(buffer) }, timer: self)
    }

    public func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try timed { try inner.broadcast(buffer, root: root) }
    }

    public func allGather<T: CommunicatorScalar>(_ values: [T]) throws -> [[T]] {
        try timed { try inner.allGather(values) }
    }

    public func barrier() throws { try timed { try inner.barrier() } }

    public func abort(_ message: String) -> Never { inner.abort(message) }
}

final class TimedOperation: PendingOperation {
    let inner: PendingOperation
    unowned let timer: TimedCommunicator

    init(_ inner: PendingOperation, timer: TimedCommunicator) {
        self.inner = inner
        self.timer = timer
    }

    func test() throws -> Bool { try timer.timed { try inner.test() } }
    func wait() throws { try timer.timed { try inner.wait() } }
}
