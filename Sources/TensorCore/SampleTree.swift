/// One fixed order in which sums over the samples of a global batch are added up, so that they
/// come out the same to the last bit however the batch is split over ranks.
///
/// Floating-point addition is commutative but not associative: a sum over 64 samples computed
/// as one run on one rank and as two runs of 32 added together on two ranks differ in their
/// last bits, and ACQ's generator (Adam's early steps are about `lr * sign(g)`, a 4-bit student
/// rounds its activations) turns last bits into different runs. So every batch reduction that
/// must not depend on the number of ranks adds its per-sample values in the shape of one binary
/// tree over the global sample indices `0..<count`: node `lo..<hi` adds its left child (the
/// largest power of two below its size) and its right child. A rank that holds the samples
/// `a..<b` sums the tree nodes that exactly cover `a..<b`; those node sums, gathered from every
/// rank, combine into the root in the same tree. Each addition in the tree then has the same
/// operands in the same order on any number of ranks, and `a + b == b + a` holds exactly.
public struct SampleTree: Sendable, Equatable {
    /// Samples in the global batch.
    public let count: Int

    public init(count: Int) {
        precondition(count >= 1, "a sample tree needs at least one sample, got \(count)")
        self.count = count
    }

    public var root: Range<Int> { 0..<count }

    /// Where node `node` splits: its left child holds the largest power of two below its size.
    @inlinable
    public static func split(_ node: Range<Int>) -> Int {
        precondition(node.count >= 2, "a leaf does not split")
        var left = 1
        while left * 2 < node.count { left *= 2 }
        return node.lowerBound + left
    }

    /// The largest tree nodes that together cover exactly `range`, in sample order.
    public func nodes(covering range: Range<Int>) -> [Range<Int>] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "samples \(range) outside the global batch 0..<\(count)")
        guard !range.isEmpty else { return [] }
        var out: [Range<Int>] = []
        func visit(_ node: Range<Int>) {
            let overlap = node.clamped(to: range)
            if overlap.isEmpty { return }
            if overlap == node { out.append(node); return }
            let m = SampleTree.split(node)
            visit(node.lowerBound..<m)
            visit(m..<node.upperBound)
        }
        visit(root)
        return out
    }

    /// The sum over `node` from the sums of some nodes: `known(n)` returns the sum of node `n`
    /// where one was computed (by any rank), and nodes without one add their two children.
    public func combine<V>(_ node: Range<Int>, known: (Range<Int>) -> V?, add: (V, V) -> V) -> V {
        if let v = known(node) { return v }
        precondition(node.count >= 2, "no rank contributed the sum of sample \(node.lowerBound)")
        let m = SampleTree.split(node)
        return add(combine(node.lowerBound..<m, known: known, add: add), combine(m..<node.upperBound, known: known, add: add))
    }

    /// Sums `rows` in place into its first row in the tree's order over `node`.
    /// - rows: one row of `width` values per sample of `node`, in sample order, `stride` apart.
    // Specialised: generic code pays a witness-table call per addition (13 % of an ACQ step).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    @inlinable
    public static func reduceRows<T: FloatingPoint>(_ rows: UnsafeMutablePointer<T>, node: Range<Int>, width: Int, stride: Int) {
        guard node.count >= 2 else { return }
        let m = split(node)
        let right = rows + (m - node.lowerBound) * stride
        reduceRows(rows, node: node.lowerBound..<m, width: width, stride: stride)
        reduceRows(right, node: m..<node.upperBound, width: width, stride: stride)
        for j in 0..<width { rows[j] += right[j] }
    }

    /// The sums over each node of `nodes(covering: local)`, from per-sample rows.
    /// - perSample: one row of `width` values per sample of `local`, in order; consumed.
    /// Returns one array of `width` values per node.
    // Specialised: generic code pays a witness-table call per addition (13 % of an ACQ step).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func nodeSums<T: FloatingPoint>(_ perSample: inout [T], local: Range<Int>, width: Int) -> [[T]] {
        precondition(perSample.count == local.count * width,
                     "\(perSample.count) values for \(local.count) samples of width \(width)")
        return perSample.withUnsafeMutableBufferPointer { nodeSums($0.baseAddress!, local: local, width: width) }
    }

    /// `nodeSums` over rows in place: `rows` holds `local.count` rows of `width`, overwritten.
    // Specialised: generic code pays a witness-table call per addition (13 % of an ACQ step).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func nodeSums<T: FloatingPoint>(_ rows: UnsafeMutablePointer<T>, local: Range<Int>, width: Int) -> [[T]] {
        nodes(covering: local).map { node in
            let first = rows + (node.lowerBound - local.lowerBound) * width
            SampleTree.reduceRows(first, node: node, width: width, stride: width)
            return Array(UnsafeBufferPointer(start: first, count: width))
        }
    }

    /// The tree sum over the whole batch of per-sample rows that are all at hand (one process,
    /// or every rank's rows gathered): `perSample` holds `count` rows of `width`.
    // Specialised: generic code pays a witness-table call per addition (13 % of an ACQ step).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func sum<T: FloatingPoint>(_ perSample: [T], width: Int) -> [T] {
        var rows = perSample
        return nodeSums(&rows, local: root, width: width)[0]
    }
}
