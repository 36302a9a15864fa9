/// An MPI call that returned an error code (MPI_ERRORS_RETURN is set on the communicator, so
/// failures come back here instead of killing the process without a word).
public struct MPIError: Error, CustomStringConvertible {
    public let rank: Int
    public let call: String
    public let code: Int32
    public let text: String

    public var description: String { "rank \(rank): \(call) failed: \(text) (MPI error code \(code))" }
}

/// A failure that every rank detects at the same point from the same collectively computed
/// values, and throws identically: rank 0 alone reports it, so the job ends with one line.
public protocol CollectiveFailure: Error {}

/// A start-up check that failed the same way on every rank (configurations that disagree, a
/// global batch too small for the ranks, models of different layout).
public struct StartupCheckError: CollectiveFailure, CustomStringConvertible {
    /// The rank the failure is about.
    public let rank: Int
    public let cause: String

    public init(rank: Int, cause: String) {
        self.rank = rank
        self.cause = cause
    }

    public var description: String { "rank \(rank): \(cause)" }
}
