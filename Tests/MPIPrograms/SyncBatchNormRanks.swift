import ArgumentParser
import Autodiff
import Data
import Distributed
import Foundation
import NN
import Safetensors
import TensorCore

/// One synchronised BatchNorm2d forward and backward, each rank on its shard of a global batch
/// read from the test's file, then a second forward for the running statistics.
/// Rank 0 writes the gathered output and input gradient, the parameter gradients summed over
/// ranks (as the gradient all-reduce does) and the running statistics to bn.safetensors. The
/// test writes the inputs and recomputes all of it on one process.
struct SyncBatchNormRanks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sync-bn")

    /// A safetensors file with x and gy ([N, C, H, W]), x2 (a second batch of the same shape),
    /// gamma and beta ([C]); bn.safetensors is written beside it.
    @Option var inputs: String

    @OptionGroup var rank: RankOptions

    func run() throws {
        try runRank(rank) { comm in
            let file = try SafetensorsFile.read(contentsOf: URL(fileURLWithPath: inputs))
            let (x, gy, x2) = (try file.tensor("x"), try file.tensor("gy"), try file.tensor("x2"))
            let (gamma, beta) = (try file.tensor("gamma"), try file.tensor("beta"))
            let (batch, channels) = (x.shape[0], x.shape[1])
            let bn = BatchNorm2d(channels)
            bn.weight!.assign(gamma)
            bn.bias!.assign(beta)
            synchronizeBatchNorms(in: bn, over: comm)
            let part = EpochSampler.shard(of: 0..<batch, rank: comm.rank, size: comm.size)
            let input = Variable(rows(x, part), requiresGrad: true)
            let y = bn(input)
            y.backward(seed: rows(gy, part))
            _ = withoutGradients { bn(Variable(rows(x2, part))) }

            var paramGrads = bn.weight!.grad!.scalars + bn.bias!.grad!.scalars
            try comm.allReduceSum(&paramGrads)
            let outputs = try comm.allGather(y.value.scalars).flatMap { $0 }
            let inputGrads = try comm.allGather(input.grad!.scalars).flatMap { $0 }
            guard comm.rank == 0 else { return }
            var result = SafetensorsFile()
            result.set("y", Tensor(shape: x.shape, scalars: outputs))
            result.set("dx", Tensor(shape: x.shape, scalars: inputGrads))
            result.set("dgamma", Tensor(shape: [channels], scalars: Array(paramGrads[0..<channels])))
            result.set("dbeta", Tensor(shape: [channels], scalars: Array(paramGrads[channels...])))
            result.set("running_mean", bn.runningMean.value)
            result.set("running_var", bn.runningVar.value)
            try result.write(to: URL(fileURLWithPath: inputs).deletingLastPathComponent().appendingPathComponent("bn.safetensors"))
        }
    }

    /// Samples `range` of a [N, ...] tensor.
    func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
        let inner = t.count / t.shape[0]
        let s = t.scalars
        return Tensor(shape: [range.count] + t.shape.dropFirst(),
                      scalars: Array(s[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }
}
