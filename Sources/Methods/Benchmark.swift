import Autodiff
import Foundation
import NN
import TensorCore

/// Throughput of the ResNet training step (forward, backward, SGD update) and of inference,
/// as images per second: `repeats` timings of `iterations` steps each after `warmup` steps.
public struct ThroughputBenchmark {
    public var config: ResNetConfig
    public var batch: Int
    public var imageSize: Int
    public var warmup = 2
    public var iterations = 5
    public var repeats = 5

    public init(config: ResNetConfig, batch: Int, imageSize: Int) {
        (self.config, self.batch, self.imageSize) = (config, batch, imageSize)
    }

    public struct Result {
        public var trainImagesPerSecond: [Double]
        public var inferenceImagesPerSecond: [Double]
    }

    public func run() -> Result {
        let model = ResNet(config, seed: 0)
        let arena = ParameterArena(model: model)
        let sgd = SGD(arena, momentum: 0.9, weightDecay: 1e-4)
        let x = Tensor.randomNormal([batch, config.inChannels, imageSize, imageSize], seed: 1)
        let labels = (0..<batch).map { $0 % config.classes }
        func trainStep() {
            model.setMode(.train)
            arena.zeroGradients()
            let loss = crossEntropy(model(Variable(x)), labels: labels)
            loss.backward()
            arena.gatherGradients()
            sgd.step(learningRate: 0.1)
        }
        func inference() {
            model.setMode(.eval)
            _ = withoutGradients { model(Variable(x)) }
        }
        return Result(trainImagesPerSecond: measure(trainStep), inferenceImagesPerSecond: measure(inference))
    }

    func measure(_ body: () -> Void) -> [Double] {
        for _ in 0..<warmup { body() }
        return (0..<repeats).map { _ in
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { body() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            return Double(batch * iterations) / seconds
        }
    }
}

public func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
