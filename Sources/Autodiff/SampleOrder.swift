import TensorCore

/// Sums over the samples of a global batch split over processes: the batch statistics of
/// synchronised batch norm, BNS and the paired loss's means.
public protocol BatchStatisticsReducer: AnyObject {
    /// The element-wise sum over every row of the global batch of per-row values: `perRow`
    /// holds `width` values for each of this process's rows (samples, or pairs), in order, and
    /// the processes hold consecutive runs of rows in rank order. Added in `SampleTree` order
    /// over the global rows, so the result has the same bits on any number of processes.
    func sumOverRows(_ perRow: [Double], width: Int) -> [Double]
}

/// `perRow`'s sum over the global batch: through `reducer` when the batch is split over
/// processes, else over this process's rows in the same tree order.
public func sumOverRows(_ perRow: [Double], width: Int, reducer: BatchStatisticsReducer?) -> [Double] {
    precondition(width > 0 && perRow.count % width == 0 && !perRow.isEmpty,
                 "\(perRow.count) values do not form rows of \(width)")
    if let reducer { return reducer.sumOverRows(perRow, width: width) }
    return SampleTree(count: perRow.count / width).sum(perRow, width: width)
}

/// Parameter gradients added up in sample order. While a backward runs inside `collect`, the
/// ops whose parameter gradient is a sum over samples (conv2d, linear, batch norm, embedding)
/// add it up in `SampleTree` order over this process's samples of the global batch and leave,
/// for every parameter leaf, one sum per tree node covering those samples. A data-parallel
/// runtime gathers the node sums of every rank and combines them in the same tree
/// (`DataParallel.backwardInSampleOrder`): the gradient then has the same bits on any number
/// of ranks.
public final class SampleOrderedGradients {
    public let tree: SampleTree
    /// This process's samples, as indices into the global batch.
    public let samples: Range<Int>
    /// The tree nodes that cover `samples`, in order.
    public let nodes: [Range<Int>]
    private var sums: [ObjectIdentifier: [Tensor]] = [:]

    @TaskLocal static var current: SampleOrderedGradients?

    public init(tree: SampleTree, samples: Range<Int>) {
        self.tree = tree
        self.samples = samples
        nodes = tree.nodes(covering: samples)
    }

    /// Runs `body` (a backward) with the ops collecting their node sums here.
    public func collect<R>(_ body: () throws -> R) rethrows -> R {
        try Self.$current.withValue(self) { try body() }
    }

    /// The node sums the ops left for `leaf`, one per node of `nodes`; nil if none.
    public func nodeSums(of leaf: Variable) -> [Tensor]? { sums[ObjectIdentifier(leaf)] }

    /// Keeps `nodeSums` (one per node of `nodes`) as `leaf`'s and returns their total, the
    /// gradient the op hands to the graph.
    func deposit(_ nodeSums: [Tensor], for leaf: Variable) -> Tensor {
        let id = ObjectIdentifier(leaf)
        // A second use would add node sums of two ops before the ranks combine them: an order
        // that depends on the split again.
        precondition(sums[id] == nil, "a parameter used by two ops has no sample-ordered gradient (shape \(leaf.shape))")
        sums[id] = nodeSums
        var total = nodeSums[0]
        for s in nodeSums.dropFirst() { total.add(s) }
        return total
    }
}

/// Whether the ops should leave sample-ordered sums for `leaf` (a parameter inside
/// `SampleOrderedGradients.collect`).
func collectsSampleOrder(_ leaf: Variable?) -> SampleOrderedGradients? {
    guard let leaf, leaf.isLeaf, leaf.requiresGrad else { return nil }
    return SampleOrderedGradients.current
}

/// The gradient of parameter `leaf` from per-sample rows (each sample's own contribution):
/// inside `SampleOrderedGradients.collect`, the node sums are left there and their total is
/// returned; otherwise the rows are added in the tree order over the local batch.
/// - rows: one row of `shape`'s element count per local sample; overwritten.
func sampleOrderedGradient(_ rows: UnsafeMutablePointer<Float>, samples n: Int, shape: [Int], leaf: Variable) -> Tensor {
    let width = shape.reduce(1, *)
    if let context = collectsSampleOrder(leaf) {
        precondition(context.samples.count == n,
                     "a parameter gradient over \(n) samples while this rank holds \(context.samples.count) of the batch")
        let sums = context.tree.nodeSums(rows, local: context.samples, width: width)
        return context.deposit(sums.map { Tensor(shape: shape, scalars: $0) }, for: leaf)
    }
    SampleTree.reduceRows(rows, node: 0..<n, width: width, stride: width)
    return Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: rows, count: width)))
}

/// `sampleOrderedGradient` from rows held in an array.
func sampleOrderedGradient(_ rows: [Float], samples n: Int, shape: [Int], leaf: Variable) -> Tensor {
    var rows = rows
    return rows.withUnsafeMutableBufferPointer { sampleOrderedGradient($0.baseAddress!, samples: n, shape: shape, leaf: leaf) }
}
