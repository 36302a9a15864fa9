import ArgumentParser
import Checkpoint
import Data
import Distributed
import Foundation
import Methods
import NN
import Safetensors

/// ResNet-20 trained data-parallel for a few steps on a prefix of Fashion-MNIST. Rank 0 writes
/// the global loss of every step (losses.json) and the final parameters and buffers
/// (state.safetensors); every rank checks that all replicas ended bit-identical.
struct TrainRanks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train")

    @Option var steps = 20
    @Option(name: .customLong("batch-size")) var batchSize = 22
    @Option(name: .customLong("train-limit")) var trainLimit = 440
    @Option var lr: Float = 0.05
    @Option(name: .customLong("bucket-mb")) var bucketMegabytes = 0.25
    @Option(name: .customLong("data-dir")) var dataDirectory: String?
    @Option var out: String
    /// Each rank writes `pid-<rank>` into --out once its first step is done (for the kill test).
    @Flag(name: .customLong("announce-pids")) var announcePIDs = false

    func run() throws {
        try runRank { comm in
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
            for step in 0..<steps {
                losses.append(try trainer.step(step).loss)
                if step == 0 && announcePIDs {
                    try "\(getpid())".write(to: outDir.appendingPathComponent("pid-\(comm.rank)"), atomically: true, encoding: .utf8)
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
            let json = try JSONSerialization.data(withJSONObject: ["ranks": comm.size, "losses": losses])
            try json.write(to: outDir.appendingPathComponent("losses.json"))
        }
    }
}
