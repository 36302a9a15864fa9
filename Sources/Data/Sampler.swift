import Foundation
import TensorCore

/// Which samples make up each global batch of a run.
///
/// Every epoch is a fresh permutation of 0..<count determined by (seed, epoch) alone, and global
/// step t takes the next `batchSize` entries of it; steps carry on across epoch boundaries.
/// The last incomplete batch of each epoch is dropped, so every global batch has exactly
/// `batchSize` samples and each epoch has `count / batchSize` steps. Any rank computes the same
/// batches without communication and then takes its `shard`.
public struct EpochSampler: Sendable {
    /// `RandomStream` purpose of the shuffle draws ("SHUF").
    public static let randomPurpose: UInt32 = 0x5348_5546

    public let count: Int
    public let seed: UInt64
    /// Off for evaluation: every epoch is then 0..<count in order.
    public let shuffle: Bool
    private let cache = PermutationCache()

    public init(count: Int, seed: UInt64, shuffle: Bool = true) {
        precondition(count > 0, "sampler over \(count) samples")
        self.count = count
        self.seed = seed
        self.shuffle = shuffle
    }

    /// Fisher-Yates driven by RandomStream(seed, randomPurpose, step: epoch, index: 0).
    /// - Returns: [count], a permutation of 0..<count
    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        guard shuffle else { return order }
        var stream = RandomStream(seed: seed, purpose: Self.randomPurpose, step: epoch, index: 0)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, stream.int(below: i + 1))
        }
        return order
    }

    public func stepsPerEpoch(batchSize: Int) -> Int { count / batchSize }

    /// The epoch that global step `step` falls in.
    public func epoch(ofStep step: Int, batchSize: Int) -> Int { step / stepsPerEpoch(batchSize: batchSize) }

    /// Dataset indices of global batch `step` (0-based, counted across epochs).
    /// - Returns: [batchSize]
    public func globalBatch(step: Int, batchSize: Int) -> [Int] {
        precondition(batchSize > 0 && batchSize <= count, "batch size \(batchSize) for \(count) samples")
        precondition(step >= 0, "step \(step)")
        let perEpoch = stepsPerEpoch(batchSize: batchSize)
        let (epoch, position) = step.quotientAndRemainder(dividingBy: perEpoch)
        let order = cache.permutation(epoch: epoch) { permutation(epoch: $0) }
        return Array(order[(position * batchSize)..<((position + 1) * batchSize)])
    }

    /// This rank's contiguous part of `globalBatch` (positions within the batch): sizes differ
    /// by at most one and the first `globalBatch.count % size` ranks take the extra samples.
    public static func shard(of globalBatch: Range<Int>, rank: Int, size: Int) -> Range<Int> {
        precondition(size > 0 && rank >= 0 && rank < size, "rank \(rank) of \(size)")
        let (base, extra) = globalBatch.count.quotientAndRemainder(dividingBy: size)
        let start = globalBatch.lowerBound + rank * base + Swift.min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}

/// The last epoch's permutation: consecutive steps share it, and recomputing a 60000-element
/// shuffle per step would cost about as much as assembling the batch.
private final class PermutationCache: @unchecked Sendable {
    private let lock = NSLock()
    private var epoch = -1
    private var order: [Int] = []

    func permutation(epoch: Int, compute: (Int) -> [Int]) -> [Int] {
        lock.lock()
        defer { lock.unlock() }
        if epoch != self.epoch {
            order = compute(epoch)
            self.epoch = epoch
        }
        return order
    }
}
