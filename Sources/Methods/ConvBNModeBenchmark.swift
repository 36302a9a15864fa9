import Autodiff
import Foundation
import NN
import TensorCore

/// One ResNet training step with the conv+BN blocks in each mode: time per step, the bytes
/// the tape keeps for backward, and the process's peak resident memory during the mode's steps.
public struct ConvBNModeBenchmark {
    public var config = ResNetConfig()
    public var batch = 128
    public var imageSize = 28
    public var warmup = 2
    public var repeats = 5

    public init() {}

    public struct Row {
        public var mode: Mode
        public var secondsPerStep: [Double]
        public var tapeBytes: Int
        public var peakResidentBytes: Int?
    }

    /// `model` is the student to step (a trained teacher's copy); its BN statistics stay frozen
    /// in eval, tune and deploy mode.
    public func run(modes: [Mode] = [.train, .eval, .tune, .deploy], model makeModel: () throws -> ResNet) throws -> [Row] {
        let x = Tensor.randomNormal([batch, config.inChannels, imageSize, imageSize], seed: 1)
        let labels = (0..<batch).map { $0 % config.classes }
        return try modes.map { mode in
            let model = try makeModel()
            try model.setModeChecked(mode)
            // Deploy trains the folded parameters, the other modes the model's own.
            let parameters = mode == .deploy
                ? model.convBNBlocks.flatMap { [($0.0 + ".w", $0.1.deployed!.weight), ($0.0 + ".b", $0.1.deployed!.bias)] }
                    + model.namedParameters().filter { $0.0.hasPrefix("fc.") }
                : model.namedParameters()
            let arena = ParameterArena(parameters)
            let sgd = SGD(arena, momentum: 0.9, weightDecay: 1e-4)
            var tape = 0
            func step() {
                arena.zeroGradients()
                let loss = crossEntropy(model(Variable(x)), labels: labels)
                tape = loss.tapeBytes()
                loss.backward()
                arena.gatherGradients()
                sgd.step(learningRate: 1e-3)
            }
            for _ in 0..<warmup { step() }
            resetPeakResident()
            let times = (0..<repeats).map { _ -> Double in
                let t0 = DispatchTime.now().uptimeNanoseconds
                step()
                return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            return Row(mode: mode, secondsPerStep: times, tapeBytes: tape, peakResidentBytes: peakResident())
        }
    }
}

/// Resets the kernel's peak-RSS mark of this process (Linux: /proc/self/clear_refs).
func resetPeakResident() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}

/// Peak resident set size since the last reset (VmHWM), in bytes; nil where unavailable.
func peakResident() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kb * 1024
}
