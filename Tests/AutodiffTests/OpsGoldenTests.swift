import Autodiff
import Foundation
import Testing
import TensorCore
import TestSupport

// Every single-layer reference case of ../shared/golden (copied into the fixtures), at the
// README's tolerance for single layers (about 1e-5 relative).
let rtol: Float = 1e-4
let atol: Float = 1e-5

@Suite struct OpsGoldenTests {
    @Test(arguments: 0..<4)
    func conv2dMatchesPyTorch(_ index: Int) throws {
        let g = try Golden.load("conv2d_\(index)")
        let stride = try #require(g.metadata["stride"].flatMap { Int($0) })
        let padding = try #require(g.metadata["padding"].flatMap { Int($0) })
        let x = Variable(try g.tensor("x"), requiresGrad: true)
        let w = Variable(try g.tensor("weight"), requiresGrad: true)
        let b = g.contains("bias") ? Variable(try g.tensor("bias"), requiresGrad: true) : nil
        let y = conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
        expectClose(y.value, try g.tensor("y"), rtol: rtol, atol: atol, "conv2d_\(index) y")
        y.backward(seed: try g.tensor("grad_y"))
        expectClose(x.grad!, try g.tensor("grad_x"), rtol: rtol, atol: atol, "conv2d_\(index) grad_x")
        expectClose(w.grad!, try g.tensor("grad_weight"), rtol: rtol, atol: atol, "conv2d_\(index) grad_weight")
        if let b { expectClose(b.grad!, try g.tensor("grad_bias"), rtol: rtol, atol: atol, "conv2d_\(index) grad_bias") }
    }

    @Test(arguments: 0..<2)
    func batchNormMatchesPyTorch(_ index: Int) throws {
        let g = try Golden.load("batchnorm2d_\(index)")
        let x = try g.tensor("x")
        // Train mode: batch statistics, then the running-statistics update.
        let xt = Variable(x, requiresGrad: true)
        let gamma = Variable(try g.tensor("gamma"), requiresGrad: true)
        let beta = Variable(try g.tensor("beta"), requiresGrad: true)
        let (y, stats) = batchNormTraining(xt, gamma: gamma, beta: beta, eps: 1e-5)
        expectClose(y.value, try g.tensor("y_train"), rtol: rtol, atol: atol, "bn\(index) y_train")
        y.backward(seed: try g.tensor("grad_y"))
        expectClose(xt.grad!, try g.tensor("grad_x_train"), rtol: rtol, atol: atol, "bn\(index) grad_x_train")
        let n = Double(stats.count)
        let rm0 = try g.tensor("running_mean_before").scalars, rv0 = try g.tensor("running_var_before").scalars
        let rm = zip(rm0, stats.mean).map { Float(0.9 * Double($0) + 0.1 * $1) }
        let rv = zip(rv0, stats.variance).map { Float(0.9 * Double($0) + 0.1 * $1 * n / (n - 1)) }
        expectClose(Tensor(shape: [rm.count], scalars: rm), try g.tensor("running_mean_after"),
                    rtol: rtol, atol: atol, "bn\(index) running_mean")
        expectClose(Tensor(shape: [rv.count], scalars: rv), try g.tensor("running_var_after"),
                    rtol: rtol, atol: atol, "bn\(index) running_var")
        // Eval mode: the running statistics as the train-mode forward left them.
        let xe = Variable(x, requiresGrad: true)
        let ye = batchNormInference(xe, gamma: Variable(try g.tensor("gamma")), beta: Variable(try g.tensor("beta")),
                                    runningMean: try g.tensor("running_mean_after"),
                                    runningVar: try g.tensor("running_var_after"), eps: 1e-5)
        expectClose(ye.value, try g.tensor("y_eval"), rtol: rtol, atol: atol, "bn\(index) y_eval")
        ye.backward(seed: try g.tensor("grad_y"))
        expectClose(xe.grad!, try g.tensor("grad_x_eval"), rtol: rtol, atol: atol, "bn\(index) grad_x_eval")
    }

    @Test func elementwiseMatchesPyTorch() throws {
        let g = try Golden.load("elementwise")
        let x = try g.tensor("x"), gy = try g.tensor("grad_y")
        let cases: [(String, (Variable) -> Variable, Tensor)] = [
            ("relu", relu, gy), ("leaky_relu", { leakyRelu($0, slope: 0.2) }, gy), ("tanh", tanh, gy),
            ("gap", globalAveragePool, try g.tensor("gap_grad_y")),
            ("up2", upsampleNearest2x, try g.tensor("up2_grad_y")),
        ]
        for (name, f, seed) in cases {
            let v = Variable(x, requiresGrad: true)
            let y = f(v)
            expectClose(y.value, try g.tensor("\(name)_y"), rtol: rtol, atol: atol, "\(name) y")
            y.backward(seed: seed)
            expectClose(v.grad!, try g.tensor("\(name)_grad_x"), rtol: rtol, atol: atol, "\(name) grad_x")
        }
    }

    @Test func linearMatchesPyTorch() throws {
        let g = try Golden.load("linear")
        let x = Variable(try g.tensor("x"), requiresGrad: true)
        let w = Variable(try g.tensor("weight"), requiresGrad: true)
        let b = Variable(try g.tensor("bias"), requiresGrad: true)
        let y = linear(x, weight: w, bias: b)
        expectClose(y.value, try g.tensor("y"), rtol: rtol, atol: atol, "linear y")
        y.backward(seed: try g.tensor("grad_y"))
        expectClose(x.grad!, try g.tensor("grad_x"), rtol: rtol, atol: atol, "linear grad_x")
        expectClose(w.grad!, try g.tensor("grad_weight"), rtol: rtol, atol: atol, "linear grad_weight")
        expectClose(b.grad!, try g.tensor("grad_bias"), rtol: rtol, atol: atol, "linear grad_bias")
    }

    @Test func lossesMatchPyTorch() throws {
        let g = try Golden.load("losses")
        let labels = try g.tensor("labels").scalars.map { Int($0) }
        let logits = Variable(try g.tensor("logits"), requiresGrad: true)
        let ce = crossEntropy(logits, labels: labels)
        expectClose(ce.value.reshaped([1]), try g.tensor("ce"), rtol: rtol, atol: atol, "ce")
        ce.backward()
        expectClose(logits.grad!, try g.tensor("grad_ce"), rtol: rtol, atol: atol, "grad_ce")
        let t = Float(g.metadata["kd_temperature"].flatMap(Double.init) ?? 4)
        let student = Variable(try g.tensor("logits"), requiresGrad: true)
        let kd = distillationLoss(student: student, teacher: Variable(try g.tensor("teacher_logits")), temperature: t)
        expectClose(kd.value.reshaped([1]), try g.tensor("kd"), rtol: rtol, atol: atol, "kd")
        kd.backward()
        expectClose(student.grad!, try g.tensor("grad_kd"), rtol: rtol, atol: atol, "grad_kd")
    }
}
