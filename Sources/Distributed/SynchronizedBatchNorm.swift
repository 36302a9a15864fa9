import Autodiff
import NN
import TensorCore

/// Batch statistics summed over every rank of a communicator: train-mode batch norm then
/// normalises with the mean and variance of the global batch, and its backward uses the global
/// sums of dy and dy * xhat (SyncBatchNorm), also when ranks hold different numbers of samples.
/// Every rank gathers every rank's per-sample rows and adds them in `SampleTree` order, so the
/// statistics have the same bits on any number of ranks.
public final class SynchronizedBatchStatistics: BatchStatisticsReducer {
    public let communicator: any Communicator

    public init(communicator: any Communicator) { self.communicator = communicator }

    /// A failure aborts the job: this runs inside a forward or backward that cannot throw, and
    /// a rank that carried on would leave its peers waiting in the next collective.
    public func sumOverRows(_ perRow: [Double], width: Int) -> [Double] {
        do {
            let all = try communicator.allGather(perRow).flatMap { $0 }
            precondition(all.count % width == 0, "rows of \(width) values gathered as \(all.count) values")
            return SampleTree(count: all.count / width).sum(all, width: width)
        } catch {
            communicator.abort("synchronised batch norm: \(error)")
        }
    }
}

/// Gives every BatchNorm2d of `model` statistics over the global batch of `communicator`'s
/// ranks. Every rank must then run the same batch norms in the same order (the same model and
/// the same forward), as every rank of a data-parallel job does.
/// - Returns: the number of batch norms synchronised.
@discardableResult
public func synchronizeBatchNorms(in model: any Layer, over communicator: any Communicator) -> Int {
    let reducer = SynchronizedBatchStatistics(communicator: communicator)
    var count = 0
    for case let bn as BatchNorm2d in model.allLayers() {
        bn.reducer = reducer
        count += 1
    }
    return count
}
