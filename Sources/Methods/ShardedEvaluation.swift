import Data
import Distributed
import NN

/// `evaluate` with the data split over the ranks: each rank evaluates its contiguous part and
/// the correct counts and loss sums are added up, so every rank gets the figures of the whole
/// set in 1/size of the time.
public func evaluate(_ model: any Layer, on data: Dataset, over communicator: any Communicator,
                     progress: Progress? = nil) throws -> (accuracy: Double, loss: Double) {
    let part = EpochSampler.shard(of: 0..<data.count, rank: communicator.rank, size: communicator.size)
    var sums = [0.0, 0.0]
    if !part.isEmpty {
        let local = data.slice(part)
        let result = evaluate(model, on: local, progress: progress)
        sums = [(result.accuracy * Double(local.count)).rounded(), result.loss * Double(local.count)]
    }
    try communicator.allReduceSum(&sums)
    return (sums[0] / Double(data.count), sums[1] / Double(data.count))
}

extension Dataset {
    /// The samples at `range` (one rank's part of an evaluation set).
    func slice(_ range: Range<Int>) -> Dataset {
        Dataset(name: name, pixels: Array(pixels[(range.lowerBound * imageSize)..<(range.upperBound * imageSize)]),
                labels: Array(labels[range]), channels: channels, height: height, width: width, classes: classes,
                mean: mean, std: std)
    }
}
