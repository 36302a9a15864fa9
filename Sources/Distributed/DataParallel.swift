import Autodiff
import NN
import TensorCore

/// Data-parallel training of one model on every rank of a communicator (the job of PyTorch's
/// DistributedDataParallel with SyncBatchNorm):
/// - at the start every rank checks that all ranks hold the same model layout, then takes rank
///   0's parameters and buffers;
/// - every BatchNorm2d normalises with the statistics of the global batch;
/// - each rank computes its part of every global batch, and `backward` leaves in the arena's
///   flat gradient buffer the gradient of the mean loss over the global batch, the same on
///   every rank, summed bucket by bucket while backward still runs.
/// The optimizer then makes the same update on every rank, so the replicas stay equal.
public final class DataParallel {
    public struct Options: Codable, Sendable, Equatable {
        /// Gradient all-reduce bucket size in MiB (PyTorch DDP's default is 25; ResNet-20's
        /// gradients are about 1 MiB in all).
        public var bucketMegabytes: Double

        public init(bucketMegabytes: Double = 0.25) { self.bucketMegabytes = bucketMegabytes }

        public var bucketBytes: Int { Swift.max(1, Int(bucketMegabytes * 1_048_576)) }
    }

    public let communicator: any Communicator
    public let arena: ParameterArena
    public let plan: GradientBucketPlan
    private let buckets: BucketedAllReduce

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Checks the layout across ranks, broadcasts rank 0's state and synchronises batch norms.
    /// - arena: the arena of `model`'s trainable parameters (the optimizer's).
    public init(model: any Layer, arena: ParameterArena, communicator: any Communicator,
                options: Options = Options()) throws {
        self.communicator = communicator
        self.arena = arena
        plan = GradientBucketPlan(arena: arena, bucketBytes: options.bucketBytes)
        buckets = BucketedAllReduce(plan: plan, arena: arena, communicator: communicator)
        // Everything of the model the arena does not hold: buffers (running statistics) and any
        // trainable tensor kept outside the arena.
        let others = model.namedState().filter { !$0.1.value.sharesStorage(with: arena.values) }
        try verifySameLayout(others: others)
        try arena.values.withSharedMutableBufferPointer { try communicator.broadcast($0, root: 0) }
        var packed = others.flatMap { $0.1.value.scalars }
        try communicator.broadcast(&packed, root: 0)
        var offset = 0
        for (_, p) in others {
            let n = p.value.count
            p.assign(Tensor(shape: p.shape, scalars: Array(packed[offset..<(offset + n)])))
            offset += n
        }
        synchronizeBatchNorms(in: model, over: communicator)
    }

    /// Backward of this rank's part of the loss, then the gradient all-reduce.
    ///
    /// - loss: the mean loss over this rank's `localCount` samples of a global batch of
    ///   `globalCount`. Backward is seeded with localCount / globalCount, so the sum over ranks
    ///   of the gradients is the gradient of the mean over the global batch, also when ranks
    ///   hold different numbers of samples.
    /// Afterwards `arena.gradients` holds that global gradient on every rank. Call it once per
    /// step, after zeroing the parameters' gradients.
    public func backward(_ loss: Variable, localCount: Int, globalCount: Int) throws {
        precondition(localCount > 0 && localCount <= globalCount,
                     "local batch \(localCount) of a global batch of \(globalCount)")
        let weight = Float(Double(localCount) / Double(globalCount))
        buckets.begin()
        let ready = arena.gradientHook { [buckets] entry in try buckets.entryReady(entry) }
        try loss.backward(seed: Tensor(shape: loss.shape, repeating: weight), onLeafGradient: ready)
        try buckets.finish()
    }

    /// Backward with every parameter gradient added up in `SampleTree` order over the global
    /// batch: the gradient in `arena.gradients` then has the same bits on any number of ranks
    /// (`backward`'s bucketed all-reduce adds rank sums in an order that depends on the split).
    ///
    /// - loss: this rank's share of the global loss (per-sample terms already weighted by
    ///   local/global), seeded with 1.
    /// - samples: this rank's samples as indices into the global batch of `globalCount`; the
    ///   ranks hold consecutive runs in rank order.
    /// Every parameter's gradient must come from ops that keep sample order (conv2d, linear,
    /// batch norm in train mode, embedding), each parameter used once. Each rank sends its node
    /// sums (one tree node for power-of-two splits), every rank combines them: traffic of an
    /// all-gather of the gradient, twice an all-reduce's for 2 ranks, more for many.
    public func backwardInSampleOrder(_ loss: Variable, samples: Range<Int>, globalCount: Int) throws {
        let tree = SampleTree(count: globalCount)
        let context = SampleOrderedGradients(tree: tree, samples: samples)
        context.collect { loss.backward() }
        let count = arena.count
        var packed = [Float](repeating: 0, count: context.nodes.count * count)
        for entry in arena.entries {
            guard let sums = context.nodeSums(of: entry.parameter.variable) else {
                precondition(entry.parameter.grad == nil,
                             "parameter '\(entry.name)' has a gradient from an op that does not add it up in sample order")
                continue
            }
            for (k, t) in sums.enumerated() {
                t.withUnsafeBufferPointer { src in
                    packed.withUnsafeMutableBufferPointer { dst in
                        (dst.baseAddress! + k * count + entry.range.lowerBound).update(from: src.baseAddress!, count: entry.range.count)
                    }
                }
            }
        }
        let bounds = try communicator.allGather([Int64(samples.lowerBound), Int64(samples.upperBound)])
        var next = 0
        for (r, b) in bounds.enumerated() {
            guard Int(b[0]) == next, b[1] >= b[0] else {
                throw StartupCheckError(rank: r, cause: "its samples \(b[0])..<\(b[1]) do not follow rank \(r - 1)'s, which end at \(next): ranks must hold consecutive runs of the global batch")
            }
            next = Int(b[1])
        }
        guard next == globalCount else {
            throw StartupCheckError(rank: bounds.count - 1, cause: "the ranks' samples end at \(next), not at the global batch of \(globalCount)")
        }
        let gathered = try communicator.allGather(packed)
        var place: [Range<Int>: (rank: Int, index: Int)] = [:]
        for (r, b) in bounds.enumerated() {
            for (k, node) in tree.nodes(covering: Int(b[0])..<Int(b[1])).enumerated() { place[node] = (r, k) }
        }
        let total = tree.combine(tree.root, known: { node in
            place[node].map { Array(gathered[$0.rank][($0.index * count)..<(($0.index + 1) * count)]) }
        }, add: { a, b in
            var sum = a
            sum.withUnsafeMutableBufferPointer { s in b.withUnsafeBufferPointer { t in for i in 0..<count { s[i] += t[i] } } }
            return sum
        })
        arena.gradients.withSharedMutableBufferPointer { g in
            total.withUnsafeBufferPointer { g.baseAddress!.update(from: $0.baseAddress!, count: count) }
        }
    }

    /// Copies every parameter's gradient into the flat buffer and sums the buffer over ranks,
    /// bucket by bucket: for gradients made outside `backward` (accumulated over several
    /// sweeps, or the benchmark of the all-reduce alone).
    public func allReduceGradients() throws {
        buckets.begin()
        for entry in arena.entries.indices.reversed() {
            arena.gatherGradient(entry: entry)
            try buckets.entryReady(entry)
        }
        try buckets.finish()
    }

    /// Element-wise sums over ranks (metrics: loss sums, correct counts).
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try communicator.allReduceSum(&v)
        return v
    }

    /// All ranks must hold the same parameter names and shapes, buffers and gradient buckets,
    /// or the broadcast and the all-reduces would mix unrelated tensors.
    private func verifySameLayout(others: [(String, Parameter)]) throws {
        var layout = FNV1a()
        for (name, p) in arena.entries.map({ ($0.name, $0.parameter) }) + others {
            layout.add(bytes: name.utf8)
            for d in p.shape { layout.add(UInt64(d)) }
        }
        layout.add(plan.fingerprint)
        let all = try communicator.allGather([Int64(bitPattern: layout.value)]).map { $0[0] }
        if let odd = all.firstIndex(where: { $0 != all[0] }) {
            throw StartupCheckError(rank: odd, cause: "its model (parameter names and shapes, buffers or gradient buckets) differs from rank 0's; every rank must build the same model with the same bucket size")
        }
    }
}
