import Autodiff
import Checkpoint
import NN
import Safetensors
import Testing
import TensorCore
import TestSupport

// The whole ResNet-20 of ../shared/golden/resnet20 at the README's whole-model tolerance (1e-4).
@Suite struct ResNetGoldenTests {
    let rtol: Float = 1e-3
    let atol: Float = 1e-4

    func goldenModel() throws -> (ResNet, Tensor, [Int], SafetensorsFile) {
        let g = try Golden.load("resnet20")
        let model = ResNet(ResNetConfig(depth: 20, inChannels: 1, classes: 10))
        try StateDict.load(g, into: model, prefix: "param.", strict: false)
        return (model, try g.tensor("x"), try g.tensor("labels").scalars.map { Int($0) }, g)
    }

    @Test func evalLogitsMatch() throws {
        let (model, x, _, g) = try goldenModel()
        model.setMode(.eval)
        let logits = withoutGradients { model(Variable(x)) }
        expectClose(logits.value, try g.tensor("logits_eval"), rtol: rtol, atol: atol, "logits_eval")
    }

    @Test func trainForwardBackwardAndRunningStatisticsMatch() throws {
        let (model, x, labels, g) = try goldenModel()
        model.setMode(.train)
        let logits = model(Variable(x))
        expectClose(logits.value, try g.tensor("logits_train"), rtol: rtol, atol: atol, "logits_train")
        let loss = crossEntropy(logits, labels: labels)
        expectClose(loss.value.reshaped([1]), try g.tensor("loss").reshaped([1]), rtol: rtol, atol: atol, "loss")
        loss.backward()
        var checked = 0
        for (name, p) in model.namedParameters() {
            expectClose(try #require(p.grad, "no gradient for \(name)"), try g.tensor("grad.\(name)"),
                        rtol: rtol, atol: atol, "grad.\(name)")
            checked += 1
        }
        #expect(checked == 65)
        for bn in model.namedState() where bn.0.hasSuffix("running_mean") || bn.0.hasSuffix("running_var") {
            expectClose(bn.1.value, try g.tensor("after_train_forward.\(bn.0)"), rtol: rtol, atol: atol, bn.0)
        }
    }

    @Test func stateDictRoundTripsThroughSafetensors() throws {
        let (model, x, _, _) = try goldenModel()
        let file = StateDict.file(of: model)
        let copy = ResNet(ResNetConfig())
        try StateDict.load(try SafetensorsFile(data: try file.serialized(), source: "roundtrip"), into: copy)
        model.setMode(.eval); copy.setMode(.eval)
        let a = withoutGradients { model(Variable(x)) }.value, b = withoutGradients { copy(Variable(x)) }.value
        #expect(a.scalars == b.scalars)
    }

    @Test func loadErrorsNameFileAndTensor() throws {
        let model = ResNet(ResNetConfig())
        var file = StateDict.file(of: model)
        file.source = "teacher.safetensors"
        var missing = SafetensorsFile(source: "teacher.safetensors")
        for (name, t) in file.tensors where name != "layers.4.c2.weight" { missing.set(name, t) }
        #expect(throws: StateDictError.missingTensor(file: "teacher.safetensors", name: "layers.4.c2.weight")) {
            try StateDict.load(missing, into: ResNet(ResNetConfig()))
        }
        var wrong = file
        wrong.set("fc.weight", Tensor.zeros([10, 32]))
        #expect(throws: StateDictError.shapeMismatch(file: "teacher.safetensors", name: "fc.weight",
                                                     expected: [10, 64], actual: [10, 32])) {
            try StateDict.load(wrong, into: ResNet(ResNetConfig()))
        }
    }
}
