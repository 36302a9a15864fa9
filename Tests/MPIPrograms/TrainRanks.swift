import ArgumentParser
import Checkpoint
import Data
import Distributed
import Foundation
import Methods
import NN
import Safetensors
import TensorCore

/// ResNet-20 trained data-parallel for a few steps on a prefix of Fashion-MNIST (pretrain's
/// optimizer, schedule and augmentation). Rank 0 writes into --out:
/// - losses.json: the global loss of every step;
/// - gradient-step0.safetensors: the all-reduced gradient of the first step, per parameter;
/// - state.safetensors: the final parameters and buffers.
/// Every rank checks that all replicas ended bit-identical.
struct TrainRanks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train")

    @Option var steps = 20
    @Option(name: .customLong("batch-size")) var batchSize = 22
    @Option(name: .customLong("train-limit")) var trainLimit = 440
    @Option var lr: Float = 0.0002
    @Option(name: .customLong("bucket-mb")) var bucketMegabytes = 0.25
    @Option(name: .customLong("data-dir")) var dataDirectory: String?
    @Option var out: String
    /// Each rank writes `pid-<rank>` into --out once its first step is done (for the kill test).
    @Flag(name: .customLong("announce-pids")) var announcePIDs = false
    @OptionGroup var rank: RankOptions

    func run() throws {
        try runRank(rank) { comm in
            var config = PretrainConfig()
            config.depth = 20
            config.batchSize = batchSize
            config.maxLearningRate = lr
            config.trainLimit = trainLimit
            config.seed = 3
            let train = try FashionMNIST.load(split: .train, directory: dataDirectory).prefix(trainLimit)
            let trainer = try SupervisedTrainer(config: config, data: train, totalSteps: steps, communicator: comm,
                                                options: DataParallel.Options(bucketMegabytes: bucketMegabytes))
            let outDir = URL(fileURLWithPath: out)
            var losses: [Double] = []
            var firstGradient = SafetensorsFile()
            for step in 0..<steps {
                losses.append(try trainer.step(step).loss)
                if step == 0 {
                    // The update leaves the gradient buffer alone: it still holds the global gradient.
                    let gradient = trainer.arena.gradients.scalars
                    for e in trainer.arena.entries {
                        firstGradient.set(e.name, Tensor(shape: e.parameter.shape, scalars: Array(gradient[e.range])))
                    }
                    if announcePIDs {
                        try "\(getpid())".write(to: outDir.appendingPathComponent("pid-\(comm.rank)"), atomically: true, encoding: .utf8)
                    }
                }
            }
            let state = StateDict.file(of: trainer.model)
            var hash = FNV1a()
            for (_, t) in state.tensors { t.withUnsafeBufferPointer { hash.add(bytes: UnsafeRawBufferPointer($0)) } }
            let hashes = try comm.allGather([Int64(bitPattern: hash.value)]).map { $0[0] }
            if let odd = hashes.firstIndex(where: { $0 != hashes[0] }) {
                throw TestProgramError("replica of rank \(odd) differs from rank 0's after \(steps) steps")
            }
            guard comm.rank == 0 else { return }
            try state.write(to: outDir.appendingPathComponent("state.safetensors"))
            try firstGradient.write(to: outDir.appendingPathComponent("gradient-step0.safetensors"))
            let json = try JSONSerialization.data(withJSONObject: ["ranks": comm.size, "losses": losses])
            try json.write(to: outDir.appendingPathComponent("losses.json"))
        }
    }
}
