import Autodiff
import Dispatch
import Distributed
import NN
import TensorCore

/// Data-parallel ResNet-20 training steps on synthetic images, and the gradient all-reduce on
/// its own, on every rank of a communicator:
/// - per bucket size: time per step, global images per second, and the share of the step spent
///   in communication calls (blocking collectives, waits: time that was not computing);
/// - the runtime's bucketed gradient all-reduce (copy into the flat buffer, non-blocking bucket
///   all-reduces, waits) against one plain all-reduce of the same bytes, in the same run.
public struct ParallelBenchmark {
    public var batchPerRank = 32
    public var inChannels = 1
    public var imageSize = 28
    public var warmup = 2
    public var steps = 8
    public var bucketMegabytes: [Double] = [0.0625, 0.25, 1, 4]
    public var allReduceRepeats = 30

    public init() {}

    public struct StepRow: Sendable {
        public var bucketMegabytes: Double
        /// Median over the steps, mean over ranks.
        public var secondsPerStep: Double
        public var imagesPerSecond: Double
        /// Median over the steps of (time in communication calls) / (step time), mean over ranks.
        public var communicationShare: Double
    }

    public struct BandwidthRow: Sendable {
        /// nil: one plain all-reduce of the whole gradient buffer.
        public var bucketMegabytes: Double?
        public var bytes: Int
        /// Median over the repeats of the time per all-reduce of the whole buffer, mean over ranks.
        public var seconds: Double
        /// Algorithm bandwidth, bytes / seconds.
        public var gigabytesPerSecond: Double { Double(bytes) / seconds / 1e9 }
    }

    public func runSteps(communicator: any Communicator) throws -> [StepRow] {
        let timed = TimedCommunicator(communicator)
        let (model, arena) = makeModel()
        let x = Tensor.randomNormal([batchPerRank, inChannels, imageSize, imageSize], seed: UInt64(communicator.rank + 1))
        let labels = (0..<batchPerRank).map { ($0 + communicator.rank) % 10 }
        let sgd = SGD(arena, momentum: 0.9, weightDecay: 5e-4)
        let global = batchPerRank * communicator.size
        return try bucketMegabytes.map { mb in
            let parallel = try DataParallel(model: model, arena: arena, communicator: timed,
                                            options: DataParallel.Options(bucketMegabytes: mb))
            func step() throws {
                model.setMode(.train)
                arena.zeroGradients()
                let loss = crossEntropy(model(Variable(x)), labels: labels)
                try parallel.backward(loss, localCount: batchPerRank, globalCount: global)
                sgd.step(learningRate: 0.01)
            }
            for _ in 0..<warmup { try step() }
            try communicator.barrier()
            // Medians over the steps: other processes on the machine preempt single steps.
            var stepSeconds: [Double] = [], shares: [Double] = []
            for _ in 0..<steps {
                timed.reset()
                let seconds = try Self.time(step)
                stepSeconds.append(seconds)
                shares.append(timed.seconds / seconds)
            }
            var sums = [median(stepSeconds), median(shares)]
            try communicator.allReduceSum(&sums)
            let perStep = sums[0] / Double(communicator.size)
            return StepRow(bucketMegabytes: mb, secondsPerStep: perStep, imagesPerSecond: Double(global) / perStep,
                           communicationShare: sums[1] / Double(communicator.size))
        }
    }

    /// - Returns: the rows (the bare all-reduce first) and the time of copying the gradients into
    ///   the flat buffer alone, which the runtime's rows include.
    public func runBandwidth(communicator: any Communicator) throws -> (rows: [BandwidthRow], gatherSeconds: Double) {
        let (model, arena) = makeModel()
        // Gradients to reduce: one backward on synthetic data.
        let x = Tensor.randomNormal([2, inChannels, imageSize, imageSize], seed: 7)
        model.setMode(.train)
        crossEntropy(model(Variable(x)), labels: [0, 1]).backward()
        let bytes = arena.count * MemoryLayout<Float>.stride
        func measure(_ body: () throws -> Void) throws -> Double {
            for _ in 0..<3 { try body() }
            try communicator.barrier()
            var s = [median(try (0..<allReduceRepeats).map { _ in try Self.time(body) })]
            try communicator.allReduceSum(&s)
            return s[0] / Double(communicator.size)
        }
        var rows = [BandwidthRow(bucketMegabytes: nil, bytes: bytes, seconds: try measure {
            try arena.gradients.withSharedMutableBufferPointer { try communicator.allReduceSum($0) }
        })]
        for mb in bucketMegabytes {
            let parallel = try DataParallel(model: model, arena: arena, communicator: communicator,
                                            options: DataParallel.Options(bucketMegabytes: mb))
            rows.append(BandwidthRow(bucketMegabytes: mb, bytes: bytes, seconds: try measure { try parallel.allReduceGradients() }))
        }
        return (rows, try measure { arena.gatherGradients() })
    }

    static func time(_ body: () throws -> Void) throws -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    func makeModel() -> (ResNet, ParameterArena) {
        let model = ResNet(ResNetConfig(depth: 20, inChannels: inChannels, classes: 10), seed: 0)
        return (model, ParameterArena(model: model))
    }
}
