import NN

/// The flat gradient buffer of a parameter arena cut into buckets for the all-reduce.
///
/// A bucket is a contiguous range of whole parameters. Buckets are formed from the last
/// parameter backwards, because backward finishes the gradients of the last layers first; a
/// bucket is closed once it reaches `bucketBytes`. Every rank builds the same plan from the same
/// model and bucket size.
public struct GradientBucketPlan: Sendable {
    public struct Bucket: Sendable {
        /// Elements of the flat gradient buffer.
        public let range: Range<Int>
        /// Arena entry indices, in the order their gradients are expected.
        public let entries: [Int]
    }

    public let buckets: [Bucket]
    /// bucketOfEntry[i]: the bucket holding arena entry i.
    public let bucketOfEntry: [Int]

    public init(arena: ParameterArena, bucketBytes: Int) {
        precondition(bucketBytes > 0, "bucket size \(bucketBytes) bytes")
        var buckets: [Bucket] = []
        var bucketOfEntry = [Int](repeating: 0, count: arena.entries.count)
        var current: [Int] = []
        var bytes = 0
        func close() {
            guard !current.isEmpty else { return }
            let lower = current.map { arena.entries[$0].range.lowerBound }.min()!
            let upper = current.map { arena.entries[$0].range.upperBound }.max()!
            for e in current { bucketOfEntry[e] = buckets.count }
            buckets.append(Bucket(range: lower..<upper, entries: current))
            current = []
            bytes = 0
        }
        for index in arena.entries.indices.reversed() {
            current.append(index)
            bytes += arena.entries[index].range.count * MemoryLayout<Float>.stride
            if bytes >= bucketBytes { close() }
        }
        close()
        self.buckets = buckets
        self.bucketOfEntry = bucketOfEntry
    }

    /// Identifies the layout (bucket boundaries), to check that all ranks agree on it.
    public var fingerprint: UInt64 {
        var hash = FNV1a()
        for b in buckets { hash.add(UInt64(b.range.lowerBound)); hash.add(UInt64(b.range.upperBound)) }
        return hash.value
    }
}

/// Sums an arena's flat gradient buffer over ranks, bucket by bucket, while backward runs.
///
/// `entryReady` is told when a parameter's gradient has been copied into the flat buffer; when
/// the last gradient of a bucket arrives the bucket's non-blocking all-reduce starts. Buckets
/// always start in index order, whatever order they complete in, because MPI needs every rank
/// to issue its collectives in the same order (a later bucket that completes early waits for
/// the earlier ones). `finish` starts what is left and waits for everything.
final class BucketedAllReduce {
    let plan: GradientBucketPlan
    let arena: ParameterArena
    let communicator: any Communicator
    private var remaining: [Int]
    private var reported: [Bool]
    private var nextToStart = 0
    private var inFlight: [PendingOperation] = []
    private var firstIncomplete = 0

    init(plan: GradientBucketPlan, arena: ParameterArena, communicator: any Communicator) {
        self.plan = plan
        self.arena = arena
        self.communicator = communicator
        remaining = plan.buckets.map(\.entries.count)
        reported = [Bool](repeating: false, count: arena.entries.count)
    }

    /// Resets for a new backward sweep.
    func begin() {
        remaining = plan.buckets.map(\.entries.count)
        reported = [Bool](repeating: false, count: arena.entries.count)
        nextToStart = 0
        inFlight = []
        firstIncomplete = 0
    }

    /// Arena entry `entry`'s gradient is final and in the flat buffer.
    func entryReady(_ entry: Int) throws {
        precondition(!reported[entry], "gradient of \(arena.entries[entry].name) reported twice in one backward")
        reported[entry] = true
        remaining[plan.bucketOfEntry[entry]] -= 1
        try startReadyBuckets()
        try progress()
    }

    /// Copies in the parameters backward did not reach (frozen or unused; zeros unless they hold
    /// a gradient, as in `gatherGradients`), starts the remaining buckets and waits for all.
    func finish() throws {
        for entry in reported.indices where !reported[entry] {
            arena.gatherGradient(entry: entry)
            reported[entry] = true
            remaining[plan.bucketOfEntry[entry]] -= 1
        }
        try startReadyBuckets()
        precondition(nextToStart == plan.buckets.count, "gradient buckets left unstarted")
        for op in inFlight { try op.wait() }
        inFlight = []
    }

    private func startReadyBuckets() throws {
        while nextToStart < plan.buckets.count && remaining[nextToStart] == 0 {
            let range = plan.buckets[nextToStart].range
            // The arena's gradient storage is one allocation that lives as long as the arena,
            // so the pointer stays valid until the operation completes in `finish`.
            let buffer = arena.gradients.withSharedMutableBufferPointer { UnsafeMutableBufferPointer(rebasing: $0[range]) }
            inFlight.append(try communicator.startAllReduceSum(buffer))
            nextToStart += 1
        }
    }

    /// Lets MPI advance the oldest operations (OpenMPI progresses non-blocking collectives only
    /// inside MPI calls).
    private func progress() throws {
        while firstIncomplete < inFlight.count, try inFlight[firstIncomplete].test() { firstIncomplete += 1 }
    }
}
