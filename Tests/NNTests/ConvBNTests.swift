import Autodiff
import Checkpoint
import NN
import Safetensors
import Testing
import TensorCore
import TestSupport

// Tune mode against ../shared/golden/convbn_eval (a conv+BN block with frozen BN), and the
// relations between the four modes.
@Suite struct ConvBNTests {
    /// The golden block as a ConvBN with the reference parameters.
    func goldenBlock() throws -> (ConvBN, Tensor, Tensor, SafetensorsFileBox) {
        let g = SafetensorsFileBox(try Golden.load("convbn_eval"))
        let w = try g.file.tensor("weight")
        let conv = Conv2d(w.shape[1], w.shape[0], kernel: w.shape[2], stride: 1, padding: 1, bias: true)
        conv.weight.assign(w)
        conv.bias!.assign(try g.file.tensor("bias"))
        let bn = BatchNorm2d(w.shape[0], eps: 1e-5)
        bn.weight!.assign(try g.file.tensor("gamma"))
        bn.bias!.assign(try g.file.tensor("beta"))
        bn.runningMean.assign(try g.file.tensor("running_mean"))
        bn.runningVar.assign(try g.file.tensor("running_var"))
        return (ConvBN(conv, bn), try g.file.tensor("x"), try g.file.tensor("grad_y"), g)
    }

    func run(_ block: ConvBN, _ mode: Mode, _ x: Tensor, _ gy: Tensor) -> (y: Tensor, gx: Tensor) {
        block.mode = mode
        block.bn.didSetMode(mode)
        for p in [block.conv.weight, block.conv.bias!, block.bn.weight!, block.bn.bias!] { p.zeroGradient() }
        let xv = Variable(x, requiresGrad: true)
        let y = block.forward(xv)
        y.backward(seed: gy)
        return (y.value, xv.grad!)
    }

    @Test(arguments: [Mode.eval, Mode.tune])
    func reproducesGoldenEvalBlock(_ mode: Mode) throws {
        let (block, x, gy, g) = try goldenBlock()
        let (y, gx) = run(block, mode, x, gy)
        let (rtol, atol): (Float, Float) = (1e-4, 1e-5)
        expectClose(y, try g.file.tensor("y"), rtol: rtol, atol: atol, "\(mode) y")
        expectClose(gx, try g.file.tensor("grad_x"), rtol: rtol, atol: atol, "\(mode) grad_x")
        expectClose(block.conv.weight.grad!, try g.file.tensor("grad_weight"), rtol: rtol, atol: atol, "\(mode) grad_weight")
        expectClose(block.conv.bias!.grad!, try g.file.tensor("grad_bias"), rtol: rtol, atol: atol, "\(mode) grad_bias")
        expectClose(block.bn.weight!.grad!, try g.file.tensor("grad_gamma"), rtol: rtol, atol: atol, "\(mode) grad_gamma")
        expectClose(block.bn.bias!.grad!, try g.file.tensor("grad_beta"), rtol: rtol, atol: atol, "\(mode) grad_beta")
    }

    /// Deploy gives Eval's output; its weight gradient is Eval's divided by s per output channel
    /// (dL/dw = dL/dw' * s), which is why training the folded weights rescales the per-channel
    /// learning rate by 1/s^2.
    @Test func deployMatchesForwardAndRescalesGradients() throws {
        let (block, x, gy, g) = try goldenBlock()
        let (yEval, _) = run(block, .eval, x, gy)
        let evalWeightGrad = block.conv.weight.grad!
        block.bn.didSetMode(.deploy)
        block.foldForDeployment()
        let (yDeploy, _) = run(block, .deploy, x, gy)
        expectClose(yDeploy, yEval, rtol: 1e-5, atol: 1e-5, "deploy y")
        let gamma = try g.file.tensor("gamma").scalars, variance = try g.file.tensor("running_var").scalars
        let s = zip(gamma, variance).map { $0 / ($1 + 1e-5).squareRoot() }
        let expected = evalWeightGrad.scaledPerOutputChannel(s.map { 1 / $0 })
        expectClose(block.deployed!.weight.grad!, expected, rtol: 1e-4, atol: 1e-5, "deploy weight gradient")
        #expect(expected.closeness(to: evalWeightGrad, rtol: 1e-3, atol: 1e-5) > 1, "the rescaling must be visible")
    }

    /// 50 steps of student fine-tuning end with the same weights whether the blocks run in Tune
    /// or in Eval mode. The set-up is the student's: the reference ResNet-20 (PyTorch's weights and
    /// statistics) fine-tuned with frozen BN statistics at a fine-tuning learning rate.
    @Test func tuneAndEvalTrainTheSameStudent() throws {
        let golden = try Golden.load("resnet20")
        func train(_ mode: Mode) throws -> Tensor {
            let model = ResNet(ResNetConfig())
            try StateDict.load(golden, into: model, prefix: "param.", strict: false)
            try model.setModeChecked(mode)
            let arena = ParameterArena(model: model)
            let sgd = SGD(arena, momentum: 0.9, nesterov: true, weightDecay: 1e-4)
            for step in 0..<50 {
                let x = Tensor.randomNormal([16, 1, 28, 28], seed: UInt64(100 + step))
                let labels = (0..<16).map { ($0 * 7 + step) % 10 }
                arena.zeroGradients()
                crossEntropy(model(Variable(x)), labels: labels).backward()
                arena.gatherGradients()
                sgd.step(learningRate: 1e-3)
            }
            return arena.values
        }
        let tune = try train(.tune), eval = try train(.eval)
        let relative = (tune - eval).norm() / eval.norm()
        #expect(relative <= 1e-5, "relative difference |tune - eval| / |eval| = \(relative)")
        // The run must have moved the weights, or equality would say nothing.
        let start = ResNet(ResNetConfig())
        try StateDict.load(golden, into: start, prefix: "param.", strict: false)
        let moved = (eval - ParameterArena(model: start).values).norm() / eval.norm()
        #expect(moved > 1e-3, "weights moved by \(moved)")
    }

    /// Inference without a graph folds each BN into its conv and applies the shortcut and ReLU
    /// as the output is written; the logits agree with the graph's eval forward (conv, BN,
    /// addition and ReLU as separate ops) in every mode, on both kernel families and both
    /// input shapes, and the fused path is not taken while gradients are recorded or while a
    /// batch norm keeps its input (BNS reads it).
    @Test(arguments: [ConvolutionKernels.blas, .avx512], [(1, 28), (3, 32)])
    func fusedInferenceMatchesTheGraphsEvalForward(_ kernels: ConvolutionKernels, _ input: (Int, Int)) throws {
        if kernels == .avx512 {
            try #require(ConvolutionKernels.processorHasAVX512, "this processor has no AVX-512; the BLAS path is tested alone")
        }
        let golden = try Golden.load("resnet20")
        let model = ResNet(ResNetConfig(inChannels: input.0), seed: 5)
        if input.0 == 1 { try StateDict.load(golden, into: model, prefix: "param.", strict: false) }
        // Statistics that are not 0 and 1, so the fold is visible.
        for (i, bn) in model.batchNorms.enumerated() {
            bn.runningMean.assign(Tensor.randomNormal([bn.channels], std: 0.1, seed: UInt64(40 + i)))
            bn.runningVar.assign(Tensor.randomUniform([bn.channels], bound: 0.5, seed: UInt64(80 + i)).map { 1 + $0 })
        }
        // 37 images: fused inference runs chunks of 16, the last one partial.
        let x = Tensor.randomNormal([37, input.0, input.1, input.1], seed: 31)
        try Compute.withConvolutionKernels(kernels) {
            try model.setModeChecked(.eval)
            let graph = model(Variable(x))
            let graphFeatures = model.features(Variable(x))
            #expect(!model.convBNBlocks.contains { $0.1.runsFusedInference }, "gradients are recorded")
            for mode in [Mode.eval, .tune, .deploy] {
                try model.setModeChecked(mode)
                let fused = withoutGradients { () -> Tensor in
                    #expect(model.convBNBlocks.allSatisfy { $0.1.runsFusedInference })
                    return model(Variable(x)).value
                }
                expectClose(fused, graph.value, rtol: 1e-4, atol: 1e-5, "\(kernels) \(input) \(mode) logits")
                let features = withoutGradients { model.features(Variable(x)).value }
                // Near-zero features after a ReLU carry the rounding of 19 folded layers, so the
                // features are compared as one vector.
                let relative = (features - graphFeatures.value).norm() / graphFeatures.value.norm()
                #expect(relative <= 1e-5, "\(kernels) \(input) \(mode) features: relative difference \(relative)")
            }
            try model.setModeChecked(.eval)
            model.batchNorms[3].capturesInput = true
            withoutGradients {
                let block = model.convBNBlocks.first { $0.1.bn === model.batchNorms[3] }!.1
                #expect(!block.runsFusedInference, "a BN that keeps its input runs in the graph")
                _ = model(Variable(x))
                #expect(model.batchNorms[3].lastInput != nil)
            }
        }
    }

    @Test func tuneModeRefusesBatchNormWithoutStatisticsOrInTrainMode() throws {
        let model = ResNet(ResNetConfig())
        let block = try #require(model.convBNBlocks.first { $0.0 == "layers.0.c2" }?.1)
        block.bn.tracksRunningStatistics = false
        #expect(throws: ConvBNModeError.self) { try model.setModeChecked(.tune) }
        do {
            try model.setModeChecked(.tune)
        } catch {
            #expect("\(error)".contains("layers.0.c2") && "\(error)".contains("no running statistics"), "\(error)")
        }
        block.bn.tracksRunningStatistics = true
        try model.setModeChecked(.tune)
        model.layers.layers[1].children.first { $0.0 == "b1" }!.1.didSetMode(.train)
        #expect(throws: ConvBNModeError.self) { try model.validateConvBNModes() }
    }
}

/// Reference wrapper so the golden file can sit in a tuple with classes.
final class SafetensorsFileBox {
    let file: SafetensorsFile
    init(_ file: SafetensorsFile) { self.file = file }
}
